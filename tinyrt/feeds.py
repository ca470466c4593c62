"""Feeds checked against the model's inputs, as onnxruntime checks them: element type, rank and fixed
dimensions; lists and Python scalars converted to the input's type (and refused where a value would change)."""
import numpy as np

from . import dtypes
from .errors import InputError
from .ops.sequence import Sequence


def describe_inputs(args):
    return ", ".join("%s: %s%s" % (a.name, a.type, a.shape) for a in args)


def check_feed(spec, value):
    """The feed as an array that fits ``spec``, or an InputError saying what was expected and given.

    Lists and scalars become arrays of the input's element type (as onnxruntime converts them); an array
    of another dtype is refused (onnxruntime refuses it too), naming the conversion that fixes it.
    """
    if spec.kind == "optional":
        return None if value is None else check_feed(spec.element, value)
    if spec.kind == "sequence":
        if not isinstance(value, (list, tuple)):
            raise InputError("input %r: expected a list of arrays (%s), got %s"
                             % (spec.name, spec.type_string, type(value).__name__))
        return Sequence(check_feed(spec.element, v) for v in value)
    want = dtypes.to_numpy(spec.elem_type) if spec.elem_type and dtypes.is_supported(spec.elem_type) else None
    if not isinstance(value, np.ndarray):
        if np.isscalar(value) or isinstance(value, (list, tuple)):
            value = _from_python(spec, value, want)
        else:
            raise InputError("input %r: expected a numpy array, got %s" % (spec.name, type(value).__name__))
    if want is not None and value.dtype != want:
        if dtypes.is_string(want):
            if value.dtype.kind not in "USV":
                raise InputError("input %r: expected %s (a numpy array of str, bytes or objects), got %s"
                                 % (spec.name, spec.type_string, value.dtype))
            value = dtypes.as_strings(value)
        else:
            raise InputError("input %r: expected %s (numpy %s), got %s; convert it with .astype(np.%s)"
                             % (spec.name, spec.type_string, want, value.dtype, want))
    if spec.shape is not None:
        if value.ndim != len(spec.shape):
            raise InputError("input %r: expected rank %d %s, got rank %d %s"
                             % (spec.name, len(spec.shape), _shape_text(spec.shape), value.ndim, list(value.shape)))
        for axis, (want_dim, got) in enumerate(zip(spec.shape, value.shape)):
            if isinstance(want_dim, int) and want_dim != got:
                raise InputError("input %r: dimension %d must be %d %s, got %s"
                                 % (spec.name, axis, want_dim, _shape_text(spec.shape), list(value.shape)))
    return value


def _from_python(spec, value, want):
    """A list or scalar feed as an array of the input's type (onnxruntime converts them the same way)."""
    try:
        if want is not None and dtypes.is_string(want):
            return dtypes.as_strings(np.array(value, dtype=object))
        array = np.array(value, dtype=want)
    except (TypeError, ValueError, OverflowError) as e:
        raise InputError("input %r: cannot make a %s tensor of the %s given (%s)"
                         % (spec.name, spec.type_string, type(value).__name__, e)) from None
    if want is not None and array.dtype.kind in "iub" and not _same_values(value, array):
        raise InputError("input %r: the values given do not fit %s" % (spec.name, spec.type_string))
    return array


def _same_values(value, array):
    """Whether converting a list to an integer array kept every value (no 2.5 -> 2, no 300 -> 44)."""
    try:
        with np.errstate(all="ignore"):
            return bool(np.all(np.array(value, dtype=np.float64) == array.astype(np.float64)))
    except (TypeError, ValueError):
        return False


def _shape_text(shape):
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
