"""The errors the ``dinr`` command reports as one line instead of a traceback.

:class:`InputError` (exit code 2) means the user's input is wrong; :class:`TrainingError`
(exit code 1) means a training run failed in a way that a traceback would not explain
better than its message.
"""


class InputError(ValueError):
    """Bad input: a file, an HDF5 dataset path or a config key that cannot be used.

    The message must name the file and the dataset path or key, so that the one-line
    report printed by the CLI is enough to fix the problem.
    """


class TrainingError(RuntimeError):
    """A training run cannot go on; the last checkpoint is still good."""


class DriftError(TrainingError):
    """Ranks hold different parameters: the identical-steps invariant is broken."""


class NumericalError(TrainingError):
    """Training produced non-finite values it could not step past."""
