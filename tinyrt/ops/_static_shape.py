"""Static shape rules shared by many ops (see ``registry.static_shape``): the output has the shape of the
first input, or the inputs' broadcast shape, or a sliding window's output (Conv and the pools)."""


def same_shape(node, shapes, constants):
    """Elementwise ops of one tensor (and normalisations, casts, softmaxes): the first input's shape."""
    return shapes[0]


def broadcast(node, shapes, constants):
    """Elementwise ops of several tensors: numpy's broadcast of all input shapes, once all are known."""
    return None if any(s is None for s in shapes) else broadcast_shapes(shapes)


def broadcast_shapes(shapes):
    """numpy's broadcasting rule (np.broadcast_shapes needs numpy 1.20): align right, 1 stretches."""
    rank = max(len(s) for s in shapes)
    out = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise ValueError("shapes %s do not broadcast" % (shapes,))
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def window_out(spatial, kernel, a, ceil_mode):
    """Output sizes of a sliding window (conv or pool) over ``spatial``; ``a``: the node's attributes."""
    n = len(spatial)
    strides = a.get("strides") or [1] * n
    dilations = a.get("dilations") or [1] * n
    pads = a.get("pads") or [0] * (2 * n)
    auto_pad = a.get("auto_pad", "NOTSET")
    out = []
    for i in range(n):
        span = (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-spatial[i] // strides[i]))
        elif auto_pad == "VALID":
            out.append((spatial[i] - span) // strides[i] + 1)
        else:
            total = spatial[i] + pads[i] + pads[i + n] - span
            if ceil_mode:
                size = -(-total // strides[i]) + 1
                if (size - 1) * strides[i] >= spatial[i] + pads[i]:
                    size -= 1  # a window may not start in the right padding
            else:
                size = total // strides[i] + 1
            out.append(size)
    return out
