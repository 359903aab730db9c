"""Runnable analyses of the wmle suite: ``python -m analyses NAME`` (see :mod:`analyses.cli`).

Each analysis module answers one question, has a docstring stating it and the model, and a
``main(settings, output)`` that fits, tabulates and saves, and hands its records to its figures
(``analyses.figures.<name>``); argument parsing lives in the CLI.
"""

# Names in the order `python -m analyses all` runs them; each is a module analyses/<name>.py.
ANALYSES = ("coin", "classes", "policy", "policy_iteration", "curriculum", "calibration", "sbc")
