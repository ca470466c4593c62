"""``tinyrt run MODEL IMAGE...``: the answers for pictures, files or folders; ``--input x.npy``: any model on tensors.

Folders are walked recursively. When the pictures sit in folders named after the model's classes (a dataset
in ImageNet's or MMEdu's layout, e.g. ``test_set/cat/1.jpg``), the run ends with the accuracy and a
confusion summary. Every run over several pictures ends with their count, pictures per second and
milliseconds per picture."""
import json
import os
import sys
import time

import numpy as np

from ..errors import InputError, TinyrtError
from . import dataset
from .common import Progress, recipe_options

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                             "default_classifier.onnx")
DEFAULT_NOTE = ("tinyrt: no model given: using the embedded default classifier (MobileNetV2 0.35 at 96x96, trained "
                "on synthetic shapes: circle, square, triangle, star; exporter/pretrained/MAKE.md)")


def add_arguments(p):
    p.add_argument("model", nargs="?", help="the .onnx file (left out: the embedded default classifier)")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="picture files or folders (walked recursively)")
    p.add_argument("--input", action="append", metavar="FILE", help="run on a tensor instead of pictures: x.npy "
                   "(a model with one input), x.npz (arrays named after the inputs) or NAME=x.npy; repeat for "
                   "several inputs")
    p.add_argument("--out", metavar="FILE.npz", help="with --input: also write the outputs to FILE.npz")
    p.add_argument("--json", action="store_true", help="print the results as JSON (a list, one entry a picture)")
    p.add_argument("--save", metavar="DIR", help="write each picture with its answer drawn into DIR (pictures that "
                   "share a name get their folder's name in front)")
    p.add_argument("--topk", type=int, default=None, help="classes to list for a classifier (default 1)")
    p.add_argument("--score", type=float, default=None, help="detection: keep objects scoring at least this "
                   "(default: the threshold stored in the model file; 0.3, XEduHub's, for MMEdu files)")
    p.add_argument("--lang", choices=["en", "zh"], default=None, help="zh: MMEdu's keys (标签, 置信度, 预测结果, 坐标)")
    p.add_argument("--progress", action="store_true", default=None, help="show the progress bar even when "
                   "stderr is not a terminal")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="never show the progress bar")
    p.add_argument("--verbose", action="store_true", help="say how pictures are prepared (the recipe) and which "
                   "detection threshold is used")
    add_recipe_arguments(p)


def add_recipe_arguments(p):
    g = p.add_argument_group("preprocessing (overrides the model's metadata)")
    g.add_argument("--size", help="network input size: N or HEIGHT,WIDTH")
    g.add_argument("--resize", help="resize the picture to N or HEIGHT,WIDTH first")
    g.add_argument("--crop", help="centre crop N or HEIGHT,WIDTH after resizing ('none': no crop)")
    g.add_argument("--mean", help="per-channel mean on 0..255, e.g. 123.675,116.28,103.53")
    g.add_argument("--std", help="per-channel std on 0..255, e.g. 58.395,57.12,57.375")
    g.add_argument("--classes", help="class names: a file with one a line, or names separated by commas")
    g.add_argument("--resize-policy", choices=["squash", "shorter", "letterbox"])
    g.add_argument("--gray", action="store_true", help="the network takes grayscale pictures")


def command(args):
    if args.input:
        return _run_tensors(args)
    from ..api import Model
    if not args.model or not args.model.lower().endswith(".onnx"):
        # `tinyrt run PICTURE...`: the pictures go to the classifier shipped inside tinyrt
        args.images = ([args.model] if args.model else []) + list(args.images)
        if not args.images:
            raise InputError("no picture given: tinyrt run [MODEL.onnx] PICTURE... (files or folders), or "
                             "tinyrt run MODEL.onnx --input x.npy")
        args.model = DEFAULT_MODEL
        print(DEFAULT_NOTE, file=sys.stderr)
    if not args.images:
        raise InputError("no picture given: tinyrt run %s PICTURE... (files or folders), or --input x.npy for a "
                         "tensor" % args.model)
    model = Model(args.model, **recipe_options(args))
    if getattr(args, "verbose", False):
        print("tinyrt: %s: %s; settings from %s" % (model.name, model.recipe.describe(), model.recipe.source),
              file=sys.stderr)
        if model.task == "detection":
            thr, where = (args.score, "--score") if args.score is not None else (model.threshold,
                                                                                 model.threshold_source)
            print("tinyrt: objects scoring at least %g (%s)" % (thr, where), file=sys.stderr)
    pictures = dataset.collect(args.images)
    sources = [p for p, _ in pictures]
    several = len(sources) > 1 or any(os.path.isdir(a) for a in args.images)
    score = dataset.Score(model.recipe.classes) if (
        model.task == "classification" and dataset.scorable(pictures, model.recipe.classes)) else None
    show_bar = args.progress if args.progress is not None else (len(sources) > 1 and sys.stderr.isatty())
    bar = Progress(len(sources), bool(show_bar) and len(sources) > 1)
    opts = {"topk": args.topk, "score": args.score, "lang": args.lang}
    names = dataset.save_names(pictures) if args.save else None
    if args.save and os.path.exists(args.save) and not os.path.isdir(args.save):
        raise InputError("--save %s: that is a file; --save takes a folder" % args.save)
    collected, failures = [], 0
    started = time.perf_counter()
    for i, (src, truth) in enumerate(pictures):
        bar.update(i, src)
        if names:
            os.makedirs(args.save, exist_ok=True)
            opts["save"] = os.path.join(args.save, names[i])
        try:
            result = next(model.iter_run([src], several=False, **opts))
        except TinyrtError as e:
            if not several:
                raise
            bar.clear()
            print("tinyrt: error: %s" % e, file=sys.stderr)
            failures += 1
            continue
        bar.clear()
        if score is not None and len(result):
            score.add(truth, result[0].name)
        if args.json:
            collected.append(dict(result.as_dict(), truth=truth) if score is not None else result.as_dict())
        else:
            print(result.text())
            if getattr(result, "saved", None):
                print("  saved %s" % result.saved)
            sys.stdout.flush()
    seconds = time.perf_counter() - started
    bar.finish()
    if args.json:
        print(json.dumps(collected, ensure_ascii=False, indent=2))
    summary = sys.stderr if args.json else sys.stdout
    if several:
        done = len(sources) - failures
        print("%d picture%s in %.2f s: %.1f pictures/s, %.1f ms/picture (reading and preparing included)"
              % (done, "" if done == 1 else "s", seconds, done / seconds if seconds > 0 else 0.0,
                 1000.0 * seconds / max(done, 1)), file=summary)
    if score is not None:
        print("\n".join(score.lines()), file=summary)
    if failures:
        print("tinyrt: %d of %d pictures failed" % (failures, len(sources)), file=sys.stderr)
        return 2
    return 0


def _run_tensors(args):
    """``--input``: the model run on tensors from .npy/.npz files, its outputs printed (or saved)."""
    from . import tensors
    from .common import session
    if args.images:
        raise InputError("give pictures or --input tensors, not both (got %s)" % ", ".join(args.images))
    if not args.model:
        raise InputError("--input needs a model: tinyrt run MODEL.onnx --input x.npy")
    sess = session(args.model)
    feeds = tensors.load_feeds(args.input, sess)
    started = time.perf_counter()
    values = sess.run(None, feeds)
    seconds = time.perf_counter() - started
    outputs = dict(zip([o.name for o in sess.get_outputs()], values))
    if args.out:
        if not args.out.endswith(".npz"):
            raise InputError("--out %s: the outputs are written as a .npz file (numpy.savez)" % args.out)
        np.savez(args.out, **outputs)
    if args.json:
        print(json.dumps(tensors.as_json(outputs), indent=2))
        return 0
    print("%s on %s: %.1f ms" % (args.model, ", ".join("%s %s %s" % (k, v.dtype, list(v.shape))
                                                        for k, v in feeds.items()), 1000 * seconds))
    for name, value in outputs.items():
        print("\n".join(tensors.describe(name, value)))
    if args.out:
        print("outputs written to %s" % args.out)
    return 0
