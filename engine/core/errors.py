"""Exceptions that carry a message meant for the user, printed without a traceback."""


class UserError(Exception):
    """A problem the user can fix (a bad path, unreadable input, a refused model file)."""
