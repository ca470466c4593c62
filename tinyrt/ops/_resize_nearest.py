"""Resize's nearest mode: each output sample copies the one input sample nearest its source coordinate.

``nearest_mode`` says which sample a fractional coordinate ``x`` (from _resize_coords.py) picks:

    round_prefer_floor    round to nearest, a tie (x = k + 0.5) goes down: ceil(x - 0.5)
    round_prefer_ceil     round to nearest, a tie goes up: floor(x + 0.5)
    floor / ceil          floor(x) / ceil(x)
    simple                Resize-10 and Upsample, which predate the attribute: trunc(x) when upsampling,
                          ceil(x) when downsampling (onnxruntime's rule; onnx's reference evaluator differs)

and an index outside the input is clamped to its edge. Since each axis is independent, the output is one
gather (``np.take``) per resized axis; upsampling by whole factors is a single broadcast copy.
"""
import numpy as np


def nearest_index(x_orig, in_len, nearest_mode, downsampling):
    """Index of the one input sample an output coordinate copies."""
    x = x_orig.astype(np.float64)          # exact, so x + 0.5 cannot round in float32
    if nearest_mode == "round_prefer_floor":
        idx = np.ceil(x - 0.5)
    elif nearest_mode == "round_prefer_ceil":
        idx = np.floor(x + 0.5)
    elif nearest_mode == "floor":
        idx = np.floor(x)
    elif nearest_mode == "ceil":
        idx = np.ceil(x)
    else:  # "simple": Resize-10 and Upsample
        idx = np.ceil(x) if downsampling else np.trunc(x)
    return np.clip(idx, 0, in_len - 1).astype(np.intp)



def nearest(X, plans):
    """Gather along each resized axis; integer upsampling factors become one broadcast copy."""
    repeats = {}
    for axis, in_len, out_len, idx in plans:
        k = out_len // in_len if in_len else 0
        if k < 1 or out_len != k * in_len or not np.array_equal(idx, np.arange(out_len) // k):
            break
        repeats[axis] = k
    else:
        view, target = [], []
        for axis, n in enumerate(X.shape):
            view += [n, 1]
            target += [n, repeats.get(axis, 1)]
        out_shape = [n * repeats.get(axis, 1) for axis, n in enumerate(X.shape)]
        return np.broadcast_to(X.reshape(view), target).reshape(out_shape)
    Y = X
    for axis, in_len, out_len, idx in plans:
        Y = np.take(Y, idx, axis=axis)
    return Y
