"""The one exception type users see: a message that names the problem, no traceback."""


class MiriskError(Exception):
    """A problem with the user's input or environment, explained in one line."""
