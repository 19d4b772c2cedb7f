"""Errors that end a command with one clear line instead of a traceback."""


class InputError(Exception):
    """Bad user input (option, file, address): exit code 2, one line naming the problem."""


class SignInError(Exception):
    """Could not sign in or reach the admin APIs: exit code 4."""
