"""The one exception type for problems with input data or parameters (the bottom of merec's layers).

A :class:`MerecError` carries a message that names the file, row, sample or parameter at fault
and says what to do; the ``merec`` command prints it without a traceback and exits with status 2.
Everything else (a bug, an interrupted run) is left to propagate.
"""


class MerecError(Exception):
    """An error caused by input data or parameters, with a message that says what to do."""
