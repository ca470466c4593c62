"""Tensors in and out of the command line: ``--input x.npy``, ``--input x.npz``, ``--input NAME=x.npy``.

For models that do not take pictures (or to feed a picture model exactly the tensor you made). Files are
read with ``numpy.load(allow_pickle=False)``: a .npy or .npz never runs code.
"""
import os

import numpy as np

from ..errors import InputError


def load_feeds(specs, sess):
    """{input name: array} from the --input values, checked against the model's inputs."""
    inputs = [a.name for a in sess.get_inputs()]
    feeds = {}
    unnamed = []
    for spec in specs:
        name, path = _split(spec, inputs)
        arrays = _read(path)
        if isinstance(arrays, dict):                      # .npz: its keys are input names
            if name is not None:
                raise InputError("--input %s: a .npz holds named arrays; give it without NAME=" % spec)
            if len(arrays) == 1 and len(inputs) == 1 and list(arrays)[0] not in inputs:
                arrays = {inputs[0]: list(arrays.values())[0]}   # np.savez(f, x): key 'arr_0'
            for key, value in arrays.items():
                if key not in inputs:
                    raise InputError("%s holds %r, which is not an input of the model (its inputs: %s)"
                                     % (path, key, ", ".join(inputs)))
                feeds[key] = value
        elif name is None:
            unnamed.append((path, arrays))
        else:
            feeds[name] = arrays
    free = [n for n in inputs if n not in feeds]
    if unnamed:
        if len(unnamed) > 1 or len(free) != 1:
            raise InputError("which input is %s? The model's inputs left to feed are %s: give each file as "
                             "NAME=FILE.npy" % (", ".join(p for p, _ in unnamed), ", ".join(free) or "none"))
        feeds[free[0]] = unnamed[0][1]
    return feeds


def _split(spec, inputs):
    """(input name or None, file path) of one --input value; a path that exists wins over NAME=PATH."""
    if "=" in spec and not os.path.exists(spec):
        name, path = spec.split("=", 1)
        if name not in inputs:
            raise InputError("--input %s: the model has no input %r (its inputs: %s)" % (spec, name, ", ".join(inputs)))
        return name, path
    return None, spec


def _read(path):
    if not os.path.isfile(path):
        raise InputError("--input %s: no such file (a .npy or .npz made with numpy.save / numpy.savez)" % path)
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputError("--input %s: not a numpy .npy/.npz file (%s)" % (path, e)) from None
    if isinstance(data, np.ndarray):
        return data
    with data:
        return {key: data[key] for key in data.files}


def describe(name, value, full=False):
    """Lines for one output: its name, dtype, shape and value range, then the values (shortened unless
    ``full``)."""
    value = np.asarray(value)
    head = "%s: %s %s" % (name, value.dtype, list(value.shape))
    if value.size and value.dtype.kind in "biuf":
        head += "  min %.6g  max %.6g  mean %.6g" % (value.min(), value.max(), value.astype(np.float64).mean())
        if value.ndim >= 1 and value.shape[-1] > 1 and value.dtype.kind == "f":
            head += "  argmax(last axis) %s" % (np.argmax(value.reshape(-1, value.shape[-1]), axis=1).tolist()[:8],)
    text = np.array2string(value, threshold=value.size + 1 if full else 40, edgeitems=4, precision=6)
    return [head] + ["  " + line for line in text.splitlines()]


def as_json(outputs):
    return {name: {"dtype": str(np.asarray(v).dtype), "shape": list(np.shape(v)), "values": np.asarray(v).tolist()}
            for name, v in outputs.items()}
