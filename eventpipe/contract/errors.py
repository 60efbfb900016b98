"""Errors the CLI turns into a one-line reason and a non-zero exit (never a traceback)."""


class EventpipeError(Exception):
    """A failure the user can act on; the message is the whole explanation, on one line."""

    exit_code = 1


class UsageError(EventpipeError):
    """Bad arguments or configuration supplied by the user."""

    exit_code = 2
