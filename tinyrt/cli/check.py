"""``tinyrt check MODEL [IMAGE]``: does tinyrt agree with onnxruntime on this model?

Both run the same feeds (a picture prepared once through the model's recipe, or seeded noise); each output's
largest difference is printed, absolute and relative (``max |a - b| / max(1, max |b|)``, the project's
tolerance is 1e-4). Integer outputs must be equal. Without onnxruntime installed, tinyrt runs alone and the
outputs' shapes and ranges are shown. Exit status 1 when an output differs beyond the tolerance."""
import numpy as np

from .common import feeds_for, session, shape_text, table, value_range
from .run import add_recipe_arguments
from ..vision.detections import compare_detections

TOLERANCE = 1e-4


def add_arguments(p):
    p.add_argument("model", help="the .onnx file")
    p.add_argument("image", nargs="?", help="a picture to feed (default: seeded noise)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help="relative tolerance (default 1e-4)")
    p.add_argument("--as-written", action="store_true", help="run tinyrt without its graph passes")
    p.add_argument("--seed", type=int, default=0, help="seed of the random feed")
    add_recipe_arguments(p)


def compare(got, want):
    """(absolute, relative difference, status text) of one output."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return float("inf"), float("inf"), "shape %s vs %s" % (list(got.shape), list(want.shape))
    if want.dtype.kind in "fc":
        if want.size == 0:
            return 0.0, 0.0, "ok (empty)"
        diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
        return diff, diff / max(1.0, float(np.abs(want).max())), ""
    bad = int((got != want).sum())
    return float(bad), float("inf") if bad else 0.0, "%d values differ" % bad if bad else "identical"


def _detections(want_dets, want_labels, got_dets, got_labels, tolerance):
    """(absolute, relative difference, status) of the detection outputs, compared as sets of rows
    (tinyrt/vision/detections.py): rows whose scores differ by float noise may come out in either order."""
    m = compare_detections(want_dets, want_labels, got_dets, got_labels, tolerance)
    if not m.ok:
        return float("inf"), float("inf"), m.detail
    scale = max(1.0, float(np.abs(np.asarray(want_dets, np.float64)).max()) if np.size(want_dets) else 1.0)
    worst = max(m.box_diff, m.score_diff)
    return worst, worst / scale, "rows matched" + (
        " (%d swapped at the cut: equal scores)" % m.excused if m.excused else "")


def command(args):
    sess = session(args.model, optimized=not args.as_written)
    feeds, what = feeds_for(sess, args.image, args, seed=args.seed)
    names = [o.name for o in sess.get_outputs()]
    ours = sess.run(None, feeds)
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    print("check of %s on %s" % (args.model, what))
    if onnxruntime is None:
        print("onnxruntime is not installed here, so tinyrt ran alone (pip install onnxruntime to compare):")
        for name, v in zip(names, ours):
            lo, hi, mean = value_range(v)
            print("  %s %s %s: min %s max %s mean %s" % (name, v.dtype, shape_text(v), lo, hi, mean))
        return 0
    opts = onnxruntime.SessionOptions()
    opts.log_severity_level = 3          # quiet about initializers listed as inputs (MMEdu's files)
    ref = onnxruntime.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    theirs = ref.run(names, feeds)
    print("tinyrt (%s kernels%s) against onnxruntime %s:" % (
        type(sess.kernels).__name__.replace("Backend", "").lower(), ", file as written" if args.as_written else "",
        onnxruntime.__version__))
    rows, worst = [], 0.0
    detection = "dets" in names and "labels" in names
    for name, a, b in zip(names, ours, theirs):
        if detection and name in ("dets", "labels"):
            i, j = names.index("dets"), names.index("labels")
            absd, rel, status = _detections(theirs[i], theirs[j], ours[i], ours[j], args.tolerance)
            if name == "labels":
                absd, rel = 0.0, (0.0 if rel <= args.tolerance else rel)
        else:
            absd, rel, status = compare(a, b)
        worst = max(worst, rel)
        if not status or status.startswith("rows matched"):
            status = ("ok" if rel <= args.tolerance else "DIFFERS") + (", " + status if status else "")
        rows.append([name, shape_text(b), str(b.dtype), "%.3g" % absd, "%.3g" % rel, status])
    table(rows, ["output", "shape", "dtype", "max |diff|", "relative", ""], ["l", "l", "l", "r", "r", "l"])
    if worst <= args.tolerance:
        print("largest relative difference %.3g <= %g: tinyrt agrees with onnxruntime" % (worst, args.tolerance))
        return 0
    print("largest relative difference %.3g > %g: tinyrt and onnxruntime DISAGREE" % (worst, args.tolerance))
    return 1
