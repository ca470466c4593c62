"""``tinyrt check MODEL [IMAGE]``: does tinyrt agree with onnxruntime on this model?

Both run the same feeds (a picture prepared once through the model's recipe, or seeded noise); each output's
largest difference is printed, absolute and relative (``max |a - b| / max(1, max |b|)``, the project's
tolerance is 1e-4). Integer outputs must be equal. Without onnxruntime installed, tinyrt runs alone and the
outputs' shapes and ranges are shown. Exit status 1 when an output differs beyond the tolerance."""
import numpy as np

from .common import feeds_for, session, shape_text, table, value_range
from .run import add_recipe_arguments

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


def compare_detections(got_dets, got_labels, want_dets, want_labels, tolerance):
    """Detections compared row set by row set: rows whose scores differ by float noise may come out in
    either order, so each of onnxruntime's real rows (score > 0) is matched with tinyrt's row of the same
    label and the nearest box and score. Rows left without a partner are allowed only at the K cut (a tie
    with the lowest kept score decides which of two near-equal boxes makes the list).
    Returns (absolute, relative difference, status)."""
    got_dets, want_dets = np.asarray(got_dets, np.float64), np.asarray(want_dets, np.float64)
    if got_dets.shape != want_dets.shape or np.shape(got_labels) != np.shape(want_labels):
        return float("inf"), float("inf"), "shapes differ"
    scale = max(1.0, float(np.abs(want_dets).max()) if want_dets.size else 1.0)
    worst, swapped = 0.0, 0
    for n in range(want_dets.shape[0]):
        free = [g for g in range(got_dets.shape[1]) if got_dets[n, g, 4] > 0]
        rows = [r for r in range(want_dets.shape[1]) if want_dets[n, r, 4] > 0]
        lowest = min([want_dets[n, r, 4] for r in rows] or [0.0])
        unmatched = []
        for r in rows:
            cands = [g for g in free if got_labels[n, g] == want_labels[n, r]]
            cost = [float(np.abs(got_dets[n, g] - want_dets[n, r]).max()) for g in cands]
            if cands and min(cost) <= tolerance * scale:
                best = cands[int(np.argmin(cost))]
                free.remove(best)
                worst = max(worst, min(cost))
            else:
                unmatched.append(r)
        at_cut = [r for r in unmatched if want_dets[n, r, 4] - lowest <= tolerance]
        left = [g for g in free if got_dets[n, g, 4] - lowest <= tolerance]
        if len(at_cut) != len(unmatched) or len(left) != len(free) or len(free) != len(unmatched):
            return float("inf"), float("inf"), "%d rows have no partner" % len(unmatched)
        swapped += len(unmatched)
    status = "rows matched" + (" (%d swapped at the cut: equal scores)" % swapped if swapped else "")
    return worst, worst / scale, status


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
            absd, rel, status = compare_detections(ours[i], ours[j], theirs[i], theirs[j], args.tolerance)
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
