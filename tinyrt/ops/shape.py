"""Shape and layout ops: they change how the elements are arranged, never their values.

    Shape(x)[i]         = x.shape[start + i]                      (int64, start/end clamped to [0, r])
    Size(x)             = prod(x.shape)                           (int64 scalar)
    Flatten(x, a)       = x.reshape(prod(shape[:a]), prod(shape[a:]))
    Reshape(x, s)       : s[i] == 0 copies x.shape[i] (unless allowzero=1), one -1 is inferred
    Squeeze/Unsqueeze   : remove / insert size-1 axes
    Transpose(x, p)     : y.shape[i] = x.shape[p[i]]; p defaults to reversed axes
    Expand(x, s)        : numpy broadcast of x against s (both ways: s may hold 1s)
    Tile(x, r)          : y.shape[i] = x.shape[i] * r[i]
    Identity, Dropout   : y = x (tinyrt runs inference only)
    DepthToSpace        : [N, C*b*b, H, W] -> [N, C, H*b, W*b];  SpaceToDepth is its inverse

Most of these return numpy views (no copy); values in tinyrt are never modified in place.
"""
import numpy as np

from .. import limits
from ..errors import InputError, UnsupportedError
from .registry import fixed_after, infers, op, prepared, static_shape
from ._infer_types import INT64, axes_of, broadcast_dims, first, ints, product, reshaped, same, same_rank
from ._static_shape import same_shape


def _ints(a):
    """A shape-like int64 tensor (or list) as a list of Python ints (at most 1024 of them)."""
    return limits.shape_list(a, "shape-like input")


def _prod(dims):
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _axis(axis, rank, op_name, what="axis"):
    """Normalise a possibly negative axis into [0, rank)."""
    a = int(axis)
    if not -rank <= a < rank:
        raise InputError("%s: %s %d is out of range for a tensor of rank %d" % (op_name, what, a, rank))
    return a + rank if a < 0 else a


# --------------------------------------------------------------------------------------------- Shape


@op("Shape", 1, 13)  # 13: only more types (bfloat16)
def shape_1(data):
    return np.array(data.shape, dtype=np.int64)


@op("Shape", 15, 19, 21, 23, 24, 25)  # 15 added start/end; later versions only add types
def shape_15(data, *, end=None, start=0):
    r = data.ndim

    def clamp(a):
        a = a + r if a < 0 else a
        return min(max(a, 0), r)

    lo = clamp(int(start))
    hi = r if end is None else clamp(int(end))
    return np.array(data.shape[lo:hi], dtype=np.int64)  # start > end gives an empty shape


@op("Size", 1, 13, 19, 21, 23, 24, 25)  # later versions only add types
def size_1(data):
    return np.array(data.size, dtype=np.int64)


# ---------------------------------------------------------------------------------- Flatten, Reshape


@op("Flatten", 1, 9, 11, 13, 21, 23, 24, 25)  # 9: all types; 11: negative axis; later: types
def flatten_1(input, *, axis=1):
    r = input.ndim
    a = int(axis)
    if not -r <= a <= r:
        raise InputError("Flatten: axis %d is out of range for a tensor of rank %d" % (a, r))
    if a < 0:
        a += r
    # Explicit sizes, not -1: -1 cannot be inferred when the tensor is empty.
    return input.reshape(_prod(input.shape[:a]), _prod(input.shape[a:]))


def _reshape(data, shape, allowzero):
    return data.reshape(_reshape_dims(data.shape, shape, allowzero))


def _reshape_dims(in_shape, shape, allowzero):
    """The dims Reshape makes of an input of shape ``in_shape`` (a list of ints)."""
    dims = _ints(shape)
    size = _prod(in_shape)
    if allowzero and 0 in dims and -1 in dims:
        raise InputError("Reshape: with allowzero=1 the shape %s may not hold both 0 and -1" % dims)
    out = []
    infer = None
    for i, d in enumerate(dims):
        if d == 0 and not allowzero:
            # 0 means "keep this input dimension"
            if i >= len(in_shape):
                raise InputError("Reshape: shape %s copies dimension %d (0) but the input %s has rank %d"
                                 % (dims, i, tuple(in_shape), len(in_shape)))
            d = in_shape[i]
        elif d == -1:
            if infer is not None:
                raise InputError("Reshape: shape %s has more than one -1" % dims)
            infer = i
        elif d < 0:
            raise InputError("Reshape: invalid dimension %d in shape %s" % (d, dims))
        out.append(d)
    if infer is not None:
        known = _prod(out[:infer] + out[infer + 1:])
        if known == 0 or size % known:
            raise InputError("Reshape: cannot infer the -1 of shape %s for an input of shape %s"
                             % (dims, tuple(in_shape)))
        out[infer] = size // known
    if _prod(out) != size:
        raise InputError("Reshape: cannot reshape an input of shape %s (%d elements) to %s"
                         % (tuple(in_shape), size, out))
    return out


@op("Reshape", 5, 13)  # 5: shape became an input; 13: bfloat16
def reshape_5(data, shape):
    return _reshape(data, shape, 0)


@op("Reshape", 14, 19, 21, 23, 24, 25)  # 14 added allowzero; later versions only add types
def reshape_14(data, shape, *, allowzero=0):
    return _reshape(data, shape, int(allowzero))


# ------------------------------------------------------------------------------- Squeeze, Unsqueeze


def _squeeze(data, axes):
    if axes is None:
        return data.reshape([d for d in data.shape if d != 1])
    r = data.ndim
    drop = set(_axis(a, r, "Squeeze", "axes entry") for a in _ints(axes))
    for a in drop:
        if data.shape[a] != 1:
            raise InputError("Squeeze: axis %d of the input %s is not 1" % (a, data.shape))
    return data.reshape([d for i, d in enumerate(data.shape) if i not in drop])


@op("Squeeze", 1, 11)  # 11: negative axes
def squeeze_1(data, *, axes=None):
    return _squeeze(data, axes)


@op("Squeeze", 13, 21, 23, 24, 25)  # 13: axes became an optional input; later: types
def squeeze_13(data, axes=None):
    return _squeeze(data, axes)


def _unsqueeze(data, axes):
    axes = _ints(axes)
    r = data.ndim + len(axes)  # axes are positions in the *output*
    pos = sorted(_axis(a, r, "Unsqueeze", "axes entry") for a in axes)
    if len(set(pos)) != len(pos):
        raise InputError("Unsqueeze: axes %s repeat an axis" % axes)
    shape = list(data.shape)
    for p in pos:  # ascending, so every insertion lands at its final position
        shape.insert(p, 1)
    return data.reshape(shape)


@op("Unsqueeze", 1, 11)  # 11: negative axes
def unsqueeze_1(data, *, axes):
    return _unsqueeze(data, axes)


@op("Unsqueeze", 13, 21, 23, 24, 25)  # 13: axes became an input; later: types
def unsqueeze_13(data, axes):
    return _unsqueeze(data, axes)


@prepared(flatten_1, reshape_5, reshape_14, squeeze_1, squeeze_13, unsqueeze_1, unsqueeze_13)
def _prepare_reshape(fn, args, fixed, attrs):
    """For the compiled program, with a constant shape or axes: each of these ops ends in
    ``data.reshape(dims)``, and its dims follow from the input's shape; worked out once."""
    if type(args[0]) is not np.ndarray or not fixed_after(args, fixed):
        return None
    dims = fn(*args, **attrs).shape

    def reshape_prepared(data, *constants):
        return data.reshape(dims)
    return reshape_prepared


# ------------------------------------------------------------------------ Transpose, Expand, Tile


@op("Transpose", 1, 13, 21, 23, 24, 25)  # later versions only add types
def transpose_1(data, *, perm=None):
    if perm is None:
        return data.transpose()  # reverses the axes
    perm = [int(p) for p in perm]
    if sorted(perm) != list(range(data.ndim)):
        raise InputError("Transpose: perm %s is not a permutation of the %d axes of the input"
                         % (perm, data.ndim))
    return data.transpose(perm)


@prepared(transpose_1)
def _prepare_transpose(fn, args, fixed, attrs):
    """For the compiled program: the permutation as a tuple of ints once (the first run checked it)."""
    if type(args[0]) is not np.ndarray:
        return None
    perm = attrs.get("perm")
    perm = None if perm is None else tuple(int(p) for p in perm)

    def transpose_prepared(data):
        return data.transpose(perm)
    return transpose_prepared


def _broadcast_shape(a, b, op_name):
    """Numpy's bidirectional broadcast of two shapes (np.broadcast_shapes needs numpy 1.20)."""
    a, b = list(a), list(b)
    n = max(len(a), len(b))
    a = [1] * (n - len(a)) + a
    b = [1] * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            raise InputError("%s: shapes %s and %s do not broadcast" % (op_name, a, b))
        out.append(y if x == 1 else x)
    return out


@op("Expand", 8, 13)  # 13: bfloat16
def expand_8(input, shape):
    out = _broadcast_shape(input.shape, _ints(shape), "Expand")
    limits.check_shape(out, input.dtype, "Expand")
    # a real array, not a read-only broadcast view: later ops (and kernels) may need contiguous memory
    return np.array(np.broadcast_to(input, out))


@op("Tile", 6, 13)  # 13: bfloat16
def tile_6(input, repeats):
    reps = _ints(repeats)
    if len(reps) != input.ndim or min(reps + [0]) < 0:
        raise InputError("Tile: repeats %s must hold one non-negative count per input axis (rank %d)"
                         % (reps, input.ndim))
    limits.check_shape([d * r for d, r in zip(input.shape, reps)], input.dtype, "Tile")
    return np.tile(input, reps)


# -------------------------------------------------------------------------------- Identity, Dropout


@op("Identity", 1, 13, 14, 16, 19, 21, 23, 24, 25)  # 14: sequences, 16: optionals, others: types
def identity_1(input):
    return input


@op("Dropout", 7, 10)  # 7 dropped is_test (always inference); 10: mask became bool
def dropout_7(data, *, ratio=0.5, _num_outputs=1, _opset=7):
    if _num_outputs < 2:
        return data
    # Nothing is dropped in inference: the mask keeps everything. Opset 7 types it like the data.
    # (onnxruntime returns an all-zero/False mask for opsets 7-11 and all-True from 12; we follow the
    # spec's meaning, mask = kept, at every opset.)
    mask_type = data.dtype if _opset < 10 else np.bool_
    return data, np.ones(data.shape, dtype=mask_type)


@op("Dropout", 12, 13, 22)  # 12: ratio and training_mode became inputs; 13, 22: types
def dropout_12(data, ratio=None, training_mode=None, *, seed=None, _num_outputs=1):
    if training_mode is not None and bool(np.asarray(training_mode).reshape(-1)[0]):
        # Training with ratio 0 drops nothing, so it is still exact; anything else is random.
        r = 0.5 if ratio is None else float(np.asarray(ratio).reshape(-1)[0])
        if r != 0.0:
            raise UnsupportedError("Dropout: training_mode=true is not supported (tinyrt runs inference "
                                   "only); feed training_mode=false or remove the input")
    if _num_outputs < 2:
        return data
    return data, np.ones(data.shape, dtype=np.bool_)


# ---------------------------------------------------------------------- DepthToSpace, SpaceToDepth


def _check_mode(op_name):
    def check(**attrs):
        mode = attrs.get("mode", "DCR")
        if mode not in ("DCR", "CRD"):
            raise UnsupportedError("%s: mode %r is not supported (DCR or CRD)" % (op_name, mode))
    return check


def _blocks(x, blocksize, op_name):
    if x.ndim != 4:
        raise InputError("%s: input must be 4-D [N, C, H, W], got shape %s" % (op_name, x.shape))
    b = int(blocksize)
    if b < 1:
        raise InputError("%s: blocksize must be positive, got %d" % (op_name, b))
    return b


def _depth_to_space(x, b, mode):
    n, c, h, w = x.shape
    if c % (b * b):
        raise InputError("DepthToSpace: channels %d are not a multiple of blocksize^2 = %d" % (c, b * b))
    c2 = c // (b * b)
    if mode == "DCR":  # channel index = (row_in_block * b + col_in_block) * c2 + out_channel
        t = x.reshape(n, b, b, c2, h, w).transpose(0, 3, 4, 1, 5, 2)
    else:  # CRD: channel index = (out_channel * b + row_in_block) * b + col_in_block
        t = x.reshape(n, c2, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, c2, h * b, w * b)


@op("DepthToSpace", 1)
def depthtospace_1(input, *, blocksize):
    return _depth_to_space(input, _blocks(input, blocksize, "DepthToSpace"), "DCR")


@op("DepthToSpace", 11, 13, 28, check=_check_mode("DepthToSpace"))  # 11 added mode; 13, 28: types
def depthtospace_11(input, *, blocksize, mode="DCR"):
    return _depth_to_space(input, _blocks(input, blocksize, "DepthToSpace"), mode)


def _space_to_depth(x, b, mode):
    n, c, h, w = x.shape
    if h % b or w % b:
        raise InputError("SpaceToDepth: spatial size %dx%d is not a multiple of blocksize %d" % (h, w, b))
    t = x.reshape(n, c, h // b, b, w // b, b)
    if mode == "DCR":  # exact inverse of DepthToSpace DCR
        t = t.transpose(0, 3, 5, 1, 2, 4)
    else:  # CRD
        t = t.transpose(0, 1, 3, 5, 2, 4)
    return t.reshape(n, c * b * b, h // b, w // b)


@op("SpaceToDepth", 1, 13)  # 13: bfloat16
def spacetodepth_1(input, *, blocksize):
    return _space_to_depth(input, _blocks(input, blocksize, "SpaceToDepth"), "DCR")


@op("SpaceToDepth", 28, check=_check_mode("SpaceToDepth"))  # 28 added mode
def spacetodepth_28(input, *, blocksize, mode="DCR"):
    return _space_to_depth(input, _blocks(input, blocksize, "SpaceToDepth"), mode)


static_shape(dropout_7, dropout_12, identity_1)(same_shape)


@static_shape(flatten_1)
def _flatten_shape(node, shapes, constants):
    x = shapes[0]
    axis = node.attrs.get("axis", 1) % (len(x) + 1) if len(x) else 0
    return (int(np.prod(x[:axis])), int(np.prod(x[axis:])))


@static_shape(transpose_1)
def _transpose_shape(node, shapes, constants):
    x = shapes[0]
    perm = node.attrs.get("perm") or list(range(len(x)))[::-1]
    return tuple(x[p] for p in perm)


@static_shape(reshape_5, reshape_14)
def _reshape_shape(node, shapes, constants):
    x = shapes[0]
    if len(node.inputs) < 2 or node.inputs[1] not in constants:
        return None
    target = [int(d) for d in constants[node.inputs[1]]]
    if not node.attrs.get("allowzero", 0):
        target = [x[i] if d == 0 else d for i, d in enumerate(target)]
    if target.count(-1) == 1:
        rest = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(x)) // rest if rest else 0
    return tuple(target) if int(np.prod(target)) == int(np.prod(x)) else None


@static_shape(unsqueeze_1, unsqueeze_13)
def _unsqueeze_shape(node, shapes, constants):
    axes = node.attrs.get("axes")
    if axes is None:
        if len(node.inputs) < 2 or node.inputs[1] not in constants:
            return None
        axes = [int(v) for v in constants[node.inputs[1]]]
    rank = len(shapes[0]) + len(axes)
    out = list(shapes[0])
    for ax in sorted(ax % rank for ax in axes):
        out.insert(ax, 1)
    return tuple(out)


@static_shape(shape_1, shape_15)
def _shape_shape(node, shapes, constants):
    rank = len(shapes[0])
    start, end = node.attrs.get("start", 0), node.attrs.get("end", rank)
    start, end = [min(max(v + rank if v < 0 else v, 0), rank) for v in (start, end)]
    return (max(end - start, 0),)


infers(dropout_7, dropout_12, identity_1)(same)
infers(tile_6)(same_rank)


@infers(shape_1, shape_15)
def _shape_types(node, ins, constants):
    x = first(ins)[1]
    if x is None:
        return [(INT64, [None])]
    return [(INT64, [len(x[slice(node.attrs.get("start", 0), node.attrs.get("end", len(x)))])])]


@infers(size_1)
def _size_types(node, ins, constants):
    return [(INT64, [])]


@infers(transpose_1)
def _transpose_types(node, ins, constants):
    elem, x = first(ins)
    if x is None:
        return None
    return [(elem, [x[p] for p in node.attrs.get("perm") or list(range(len(x)))[::-1]])]


@infers(flatten_1)
def _flatten_types(node, ins, constants):
    elem, x = first(ins)
    if x is None:
        return None
    axis = node.attrs.get("axis", 1)
    axis = axis + len(x) if axis < 0 else axis
    return [(elem, [product(x[:axis]), product(x[axis:])])]


@infers(reshape_5, reshape_14)
def _reshape_types(node, ins, constants):
    elem, x = first(ins)
    shape = ints(constants[1]) if len(constants) > 1 else None
    return [(elem, reshaped(x, shape, node.attrs.get("allowzero", 0)))]


@infers(squeeze_1, squeeze_13, unsqueeze_1, unsqueeze_13)
def _squeeze_types(node, ins, constants):
    """Squeeze, Unsqueeze: the axes from the attribute or a constant input."""
    elem, x = first(ins)
    if x is None:
        return None
    axes = axes_of(node, constants, 1)
    if node.op_type == "Squeeze":
        if axes is None:
            return [(elem, [d for d in x if d != 1]) if all(isinstance(d, int) for d in x) else (elem, None)]
        axes = [v % len(x) for v in axes]
        return [(elem, [d for i, d in enumerate(x) if i not in axes])]
    if axes is None:
        return [(elem, None)]
    rank = len(x) + len(axes)
    axes = sorted(v % rank for v in axes)
    rest = iter(x)
    return [(elem, [1 if i in axes else next(rest) for i in range(rank)])]


@infers(expand_8)
def _expand_types(node, ins, constants):
    elem, x = first(ins)
    shape = ints(constants[1]) if len(constants) > 1 else None
    return [(elem, broadcast_dims([x, shape]) if shape is not None else None)]
