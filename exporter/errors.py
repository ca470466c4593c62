"""Errors raised by the exporter.

Every error the exporter raises on purpose is an :class:`ExporterError`, so the command line can print one
clear line (and a traceback only with ``--debug``).
"""


class ExporterError(Exception):
    """Base class: something the user can fix (a wrong argument, a bad file, a failed verification)."""


class CheckpointError(ExporterError):
    """A checkpoint does not fit the model.

    ``missing``: keys the model needs that the checkpoint lacks; ``unexpected``: keys of the checkpoint the
    model does not have; ``wrong_shape``: ``(key, checkpoint_shape, model_shape)`` tuples.
    """

    def __init__(self, message, missing=None, unexpected=None, wrong_shape=None):
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.wrong_shape = list(wrong_shape or [])
        super().__init__(message)


class ClassesError(ExporterError):
    """Class names disagree with the number of classes, or the class file cannot be read."""


class VerificationError(ExporterError):
    """The exported file does not compute what the torch model computes."""


class BackendError(ExporterError):
    """An unknown export backend (only ONNX exists)."""
