"""The one error type for bad user input, shared by every package.

The CLI prints its message on one line and exits with code 2; nothing else about it is special.
"""


class InputError(ValueError):
    """Raised for input the user can fix: the message names the value, what was received and
    what is allowed."""
