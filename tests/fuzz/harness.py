"""Running one fuzz case: load the bytes, and when they load, run the model on zeros.

The only exceptions tinyrt may raise are its own (``tinyrt.TinyrtError`` and subclasses); anything else
propagates out of ``run_case`` for the campaign to report.
"""
import numpy as np

import tinyrt
from tinyrt import dtypes

SYMBOLIC_DIM = 2             # what a symbolic (or missing) dimension becomes in the zeros we feed
MAX_FEED_ELEMENTS = 1 << 20  # a declared input bigger than this is not fed (the harness's memory, not tinyrt's)


def zero_feed(spec):
    """Zeros that fit a declared input, or None when the declaration asks for too much."""
    if spec.kind == "sequence":
        return []
    code = spec.elem_type if spec.elem_type and dtypes.is_supported(spec.elem_type) else 1
    shape = [d if isinstance(d, int) else SYMBOLIC_DIM for d in (spec.shape or [])]
    count = 1
    for d in shape:
        count *= d
    if count > MAX_FEED_ELEMENTS:
        return None
    return np.zeros(shape, dtypes.to_numpy(code))


def run_case(data, options=None):
    """'refused at load: ModelError', 'failed at run: InputError', 'ran', or 'not run: ...'."""
    try:
        sess = tinyrt.InferenceSession(data, options)
    except tinyrt.TinyrtError as e:
        return "refused at load: %s" % type(e).__name__
    feeds = {}
    for arg in sess.get_inputs():
        value = zero_feed(arg.spec)
        if value is None:
            return "not run: input %r declares more than %d elements" % (arg.name, MAX_FEED_ELEMENTS)
        feeds[arg.name] = value
    try:
        sess.run(None, feeds)
    except tinyrt.TinyrtError as e:
        return "failed at run: %s" % type(e).__name__
    return "ran"
