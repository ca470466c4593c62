"""What the sub-commands share: loading a session, feeds from a picture or seeded noise, running the plan
with a per-node hook, tables, and a tiny PNG writer (stdlib zlib: feature maps need no Pillow)."""
import os
import struct
import sys
import time
import zlib

import numpy as np

from ..errors import InputError
from ..files import atomic_write
from ..session import GraphOptimizationLevel, InferenceSession, SessionOptions


def session(path, optimized=True, threads=0):
    """An InferenceSession on ``path``; ``optimized=False`` runs the file exactly as written."""
    if not os.path.exists(path):
        raise InputError("no such model file: %s" % path)
    opts = SessionOptions()
    opts.intra_op_num_threads = threads
    if not optimized:
        opts.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL
    return InferenceSession(path, opts)


def positive_int(text):
    """argparse type: a whole number of at least 1 (``--runs 0`` is refused, not quietly run once)."""
    import argparse
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text)
    if n < 1:
        raise argparse.ArgumentTypeError("%d: give at least 1" % n)
    return n


def recipe_options(args):
    """The preprocessing options given on the command line, as tinyrt.load keywords."""
    opts = {}
    if getattr(args, "size", None):
        opts["size"] = _ints(args.size, "--size")
    for name in ("mean", "std"):
        if getattr(args, name, None):
            opts[name] = _floats(getattr(args, name), "--" + name)
    if getattr(args, "crop", None):
        opts["crop"] = False if args.crop in ("none", "0") else _ints(args.crop, "--crop")
    if getattr(args, "resize", None):
        opts["resize"] = _ints(args.resize, "--resize")
    if getattr(args, "classes", None):
        opts["classes"] = args.classes
    if getattr(args, "resize_policy", None):
        opts["resize_policy"] = args.resize_policy
    if getattr(args, "gray", False):
        opts["color_mode"] = "GRAY"
    return opts


def _ints(text, what):
    try:
        v = [int(x) for x in str(text).replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise InputError("%s takes a number or HEIGHT,WIDTH, got %r" % (what, text))
    return v[0] if len(v) == 1 else v


def _floats(text, what):
    try:
        return [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise InputError("%s takes numbers separated by commas, got %r" % (what, text))


MAX_RANDOM_FEED_BYTES = 256 << 20  # seeded noise for dynamic inputs: at most this much


def random_feeds(sess, seed=0, size=None):
    """Seeded float32 noise for every input (dynamic dims: 1 for the batch, ``size`` or 224 for the rest)."""
    feeds = {}
    rs = np.random.RandomState(seed)
    planned = 0
    for arg in sess.get_inputs():
        shape = []
        for i, d in enumerate(arg.shape or []):
            if isinstance(d, int) and d > 0:
                shape.append(d)
            elif i == 0:
                shape.append(1)                       # the batch
            elif i == 1:
                shape.append(3)                       # channels
            else:
                shape.append(size[i - 2] if size and i - 2 < len(size) else 224)
        planned += 8 * int(np.prod(shape, dtype=np.float64))
        if planned > MAX_RANDOM_FEED_BYTES:  # 6 dynamic dims of 224 would be 56 GiB of noise
            raise InputError("input %r has dynamic dims %s: noise of shape %s would be too big (over %d MiB); "
                             "give the sizes (a picture, or --size)" % (arg.name, arg.shape, shape,
                                                                       MAX_RANDOM_FEED_BYTES >> 20))
        t = arg.type or "tensor(float)"
        if "float" in t:
            dtype = np.float16 if "float16" in t else np.float64 if "double" in t else np.float32
            feeds[arg.name] = rs.standard_normal(shape).astype(dtype)
        elif "bool" in t:
            feeds[arg.name] = np.zeros(shape, np.bool_)
        else:
            feeds[arg.name] = np.zeros(shape, np.int64 if "int64" in t else np.int32)
    return feeds


def feeds_for(sess, image, args, seed=0):
    """(feeds, a description) from a picture through the model's recipe, or seeded noise without one."""
    if image:
        from ..api import Model
        model = Model(sess, **recipe_options(args))
        x, _, rgb = model.prepare(image, color="BGR" if getattr(args, "bgr", False) else "RGB")
        what = "%s (%dx%d) prepared as %s" % (image, rgb.shape[1], rgb.shape[0], model.recipe.describe())
        return {model.recipe.input_name: x}, what
    feeds = random_feeds(sess, seed)
    return feeds, "seeded random input (numpy RandomState(%d).standard_normal)" % seed


def run_with_hook(sess, feeds, hook):
    """{output name: array} of one run, with ``hook(step, args, compute) -> outputs`` seeing every step."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run_with_hook(names, feeds, hook)))


def node_label(node, width=44):
    """The node's name (else its first output), shortened from the left: the end of a name says most."""
    name = node.name or (node.outputs[0] if node.outputs else "?")
    return name if len(name) <= width else "..." + name[-(width - 3):]


def shape_text(a):
    if a is None:
        return "-"
    if isinstance(a, np.ndarray):
        return "[" + ",".join(str(d) for d in a.shape) + "]"
    if isinstance(a, (list, tuple)):
        return "seq(%d)" % len(a)
    return type(a).__name__


def value_range(a):
    """(min, max, mean) as short strings, or ('', '', '') when not numeric."""
    if not isinstance(a, np.ndarray) or a.size == 0:
        return ("empty" if isinstance(a, np.ndarray) else "", "", "")
    if a.dtype == np.bool_:
        return ("F" if not a.all() else "T", "T" if a.any() else "F", "%.3g" % a.mean())
    if a.dtype.kind not in "biuf":
        return ("", "", "")
    lo, hi, mean = a.min(), a.max(), a.astype(np.float64).mean()
    if a.dtype.kind == "f":
        return ("%.4g" % lo, "%.4g" % hi, "%.4g" % mean)
    return ("%d" % lo, "%d" % hi, "%.4g" % mean)


def table(rows, header, aligns=None, out=None):
    """Print rows of strings as aligned columns (``aligns``: 'l' or 'r' per column)."""
    out = out or sys.stdout
    aligns = aligns or ["l"] * len(header)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def fmt(r):
        cells = [str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(r, widths, aligns)]
        return ("  " + "  ".join(cells)).rstrip()
    out.write(fmt(header) + "\n")
    for r in rows:
        out.write(fmt(r) + "\n")


def write_png(path, pixels):
    """Write a uint8 HxW (gray) or HxWx3 (RGB) array as a PNG file, with the standard library only."""
    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = a.shape[:2]
    color = 2 if a.ndim == 3 else 0
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))       # filter type 0 on every row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)

    def write(f):
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))
    atomic_write(path, write)  # a failure half-way leaves no truncated file
    return path


def feature_grid(a, max_maps=64, scale=None, gap=1):
    """A [1, C, H, W] (or [C, H, W] / [H, W]) activation as one gray picture: each channel a tile,
    stretched to 0..255 on its own, tiles in a near-square grid (the first ``max_maps`` channels)."""
    a = np.asarray(a, dtype=np.float64)
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise InputError("a feature map is [1, C, H, W]; this output has shape %s" % (list(a.shape),))
    a = a[:max_maps]
    c, h, w = a.shape
    if scale is None:
        scale = max(1, int(64 // max(h, w)))    # small maps (7x7) drawn bigger
    cols = int(np.ceil(np.sqrt(c)))
    rows = int(np.ceil(c / float(cols)))
    th, tw = h * scale, w * scale
    grid = np.full((rows * (th + gap) + gap, cols * (tw + gap) + gap), 255, np.uint8)
    for i in range(c):
        m = a[i]
        lo, hi = m.min(), m.max()
        t = np.zeros_like(m) if hi <= lo else (m - lo) / (hi - lo)
        tile = np.repeat(np.repeat((t * 255).round().astype(np.uint8), scale, 0), scale, 1)
        r, k = divmod(i, cols)
        y, x = gap + r * (th + gap), gap + k * (tw + gap)
        grid[y:y + th, x:x + tw] = tile
    return grid


class Progress:
    """A one-line progress bar on stderr (standard library only): ``[#####.....] 12/40 name``."""

    def __init__(self, total, enabled, stream=None, width=30):
        self.total, self.enabled, self.width = total, enabled, width
        self.stream = stream or sys.stderr
        self.start = time.time()
        self.shown = False

    def update(self, done, name=""):
        if not self.enabled:
            return
        frac = done / float(self.total) if self.total else 1.0
        fill = int(round(self.width * frac))
        elapsed = time.time() - self.start
        eta = elapsed / done * (self.total - done) if done else 0.0
        name = os.path.basename(str(name))[:30]
        self.stream.write("\r[%s%s] %d/%d %3.0f%% %5.1fs left %-30s" % (
            "#" * fill, "." * (self.width - fill), done, self.total, 100 * frac, eta, name))
        self.stream.flush()
        self.shown = True

    def clear(self):
        if self.enabled and self.shown:
            self.stream.write("\r" + " " * (self.width + 60) + "\r")
            self.stream.flush()

    def finish(self):
        if self.enabled:
            self.update(self.total, "done")
            self.stream.write("\n")
            self.stream.flush()
