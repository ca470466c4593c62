"""Activations a conv applies as its tail: one record each, kept beside its op, in the op's own module.

A FusedConv (ops/fused.py) computes ``act(Conv(X, W, B) + Z)``, ``act`` named by its ``activation``
attribute with its ``activation_params`` (the convention of onnxruntime's com.microsoft FusedConv). An
activation that can be such a tail says so next to its op function, with ``tail(name, apply, ...)``:

    name     the ``activation`` value: the ONNX op's type (``Relu``, ``Clip``, ...), or a tinyrt op's
    apply    ``apply(y, *params)``: y = act(y) in place on a float array, returning y (what the numpy path
             runs). Its parameters after ``y`` (those without a default) are the ``activation_params``
    params   how passes/fuse_activation.py takes a node of the ONNX op ``name`` into the conv before it: a
             tuple of the op's attribute names, which become the params (absent ones take the op's
             defaults, from its registered signature); or a function (node, constants) -> (name, params),
             or None where that node cannot fuse. None for a tail no ONNX op fuses as (a pass writes it)
    kernel   ``kernel(*params) -> (name, a, b, qs)``: how the numba conv kernels apply it, ``name`` a key
             of kernels/conv.py's ``ACT`` (by default the record's own name, the params as ``a`` and ``b``,
             no rounding ``qs``). A conv whose tail the kernels do not know runs as the numpy op
    clip     ``clip(*params) -> (lo, hi)`` for a tail that is a clip (Relu, Clip): passes/quantization.py
             folds such a tail into the bounds of the rounding after it
    fold     ``fold(W, B, *params) -> (W, B, apply)`` or None: the numpy path's prepared conv takes part of
             the tail into its weights and bias, once, and then runs ``apply(y)`` in place of the tail on
             the sums of those (a QDQ model's rounding: 1/scale, so no division a run; HardSwish:
             1/sqrt(6), one sweep fewer)

Who reads them: passes/fuse_activation.py (which nodes fuse, with which params), passes/quantization.py
(the clips), ops/fused.py (the load-time check and the numpy tail) and kernel_wrappers/ (the numpy path's
prepared conv, the kernels' codes). So a new activation is its record in its op's module; on the numba
path it then runs through the numpy op until the kernels learn it (a code in kernels/conv.py's ``ACT`` and
its math in the tiles' tail, kernels/gemm.py ``tail``, or in kernels/conv.py ``_act``).
"""
import inspect

from ._bordered import rows_view

try:  # np.clip's ufunc itself: np.clip is a Python wrapper that costs more than the clip on small tensors
    from numpy._core.umath import clip
except ImportError:  # numpy < 2
    from numpy.core.umath import clip

TAILS = {}  # activation name -> Tail


class Tail:
    """One activation as a conv's tail (see the module docstring for the fields)."""

    def __init__(self, name, apply, params=None, kernel=None, clip=None, fold=None):
        self.name, self.apply, self.clip, self.fold = name, apply, clip, fold
        self._params, self._kernel = params, kernel
        after_y = list(inspect.signature(apply).parameters.values())[1:]
        self.count = sum(1 for p in after_y if p.default is p.empty)  # how many activation_params

    def from_node(self, node, constants):
        """(activation, params) that fuse ``node`` (an op of type ``name``) into the conv before it, or None."""
        if self._params is None:
            return None
        if callable(self._params):
            return self._params(node, constants)
        from .registry import resolve
        defaults = resolve(self.name, "", node.opset or 1).attributes
        return self.name, [float(node.attrs.get(a, defaults[a])) for a in self._params]

    def for_kernel(self, params):
        """(name in kernels/conv.py's ACT, a, b, qs) for the numba conv kernels."""
        if self._kernel is not None:
            return self._kernel(*params)
        a, b = (list(params) + [0.0, 0.0])[:2]
        return self.name, a, b, 0.0


def pieces(y, chunk, src=None):
    """y's memory in cache-sized flat pieces, each with the same piece of ``src`` (y's, without one), so that
    a tail's sweeps over each piece in turn make one trip to memory instead of one a sweep, and its
    temporaries stay small. A conv's result inside a zero border (ops/_bordered.py) goes by whole rows of
    its channels-last memory instead; y (and src) whole where neither works without a copy."""
    memory = flat(y)
    if memory is None:
        rows = _rows(y) if src is None else None
        if rows is None:
            return [(y, y if src is None else src)]
        step = max(1, chunk // max(rows.shape[1], 1))
        return [(rows[i:i + step], rows[i:i + step]) for i in range(0, rows.shape[0], step)]
    source = memory if src is None else flat(src)
    return [(memory[i:i + chunk], source[i:i + chunk]) for i in range(0, max(memory.size, 1), chunk)]


def flat(y):
    """A 1-D view of y's memory (C order, or the channels-last memory of an NCHW view), or None."""
    if y.flags.c_contiguous:
        return y.reshape(-1)
    if y.ndim == 4 and y.transpose(0, 2, 3, 1).flags.c_contiguous:
        return y.transpose(0, 2, 3, 1).reshape(-1)
    return None


def _rows(y):
    """The channels-last memory of an NCHW view of one image as (H, W * C) rows, each row contiguous (the
    interior of a bordered buffer), or None."""
    if y.ndim != 4 or y.shape[0] != 1:
        return None
    try:
        return rows_view(y.transpose(0, 2, 3, 1))[0]
    except ValueError:  # (numpy would have to copy)
        return None


def tail(name, apply, params=None, kernel=None, clip=None, fold=None):
    """Register the tail ``name`` (see the module docstring); returns its record."""
    TAILS[name] = Tail(name, apply, params, kernel, clip, fold)
    return TAILS[name]


def _identity(y):
    return y


# no activation: the conv alone (with its residual input, if any)
tail("", _identity, clip=lambda: (-float("inf"), float("inf")))
