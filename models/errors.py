"""The suite's own exceptions (pure Python: ``models.weights`` imports this without PyMC)."""

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input to a public function: the message names the argument and the problem.

    A ``ValueError``, so callers may catch either; the command line turns exactly these into exit
    code 2 with one line on stderr, and lets any other error show its traceback.

    Parameters
    ----------
    message : str
        One line naming the argument and the problem.

    Attributes
    ----------
    args : tuple
        ``(message,)``, as for any exception.

    Examples
    --------
    >>> from models.weights import check
    >>> try:
    ...     check([1.0, 2.0], 3)
    ... except ValueError as err:
    ...     print(type(err).__name__, "-", err)
    InputError - weights has length 2, expected 3 (one per observation)
    """
