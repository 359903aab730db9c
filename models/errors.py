"""The suite's own exceptions (pure Python: ``models.weights`` imports this without PyMC)."""


class InputError(ValueError):
    """Bad input to a public function: the message names the argument and the problem.

    A ``ValueError``, so callers may catch either; the command line turns exactly these into exit
    code 2 with one line on stderr, and lets any other error show its traceback.
    """
