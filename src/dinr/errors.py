"""Errors that mean "the user's input is wrong", reported as one line with exit code 2."""


class InputError(ValueError):
    """Bad input: a file, an HDF5 dataset path or a config key that cannot be used.

    The message must name the file and the dataset path or key, so that the one-line
    report printed by the CLI is enough to fix the problem.
    """
