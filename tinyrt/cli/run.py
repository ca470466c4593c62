"""``tinyrt run MODEL IMAGE...``: the answers for pictures, files or folders."""
import json
import os
import sys

from ..errors import InputError, TinyrtError
from .common import Progress, recipe_options

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                             "default_classifier.onnx")
DEFAULT_NOTE = ("tinyrt: no model given: using the embedded default classifier (MobileNetV2 0.35 at 96x96, trained "
                "on synthetic shapes: circle, square, triangle, star; exporter/pretrained/MAKE.md)")


def add_arguments(p):
    p.add_argument("model", nargs="?", help="the .onnx file (left out: the embedded default classifier)")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="picture files or folders")
    p.add_argument("--json", action="store_true", help="print the results as JSON (a list, one entry a picture)")
    p.add_argument("--save", metavar="DIR", help="write each picture with its answer drawn into DIR")
    p.add_argument("--topk", type=int, default=None, help="classes to list for a classifier (default 1)")
    p.add_argument("--score", type=float, default=None, help="detection: keep objects scoring at least this "
                   "(default 0.3)")
    p.add_argument("--lang", choices=["en", "zh"], default=None, help="zh: MMEdu's keys (标签, 置信度, 预测结果, 坐标)")
    p.add_argument("--progress", action="store_true", default=None, help="show the progress bar even when "
                   "stderr is not a terminal")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="never show the progress bar")
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
    from ..api import Model
    from ..vision.image import expand_sources
    if not args.model or not args.model.lower().endswith(".onnx"):
        # `tinyrt run PICTURE...`: the pictures go to the classifier shipped inside tinyrt
        args.images = ([args.model] if args.model else []) + list(args.images)
        if not args.images:
            raise InputError("no picture given: tinyrt run [MODEL.onnx] PICTURE... (files or folders)")
        args.model = DEFAULT_MODEL
        print(DEFAULT_NOTE, file=sys.stderr)
    if not args.images:
        raise InputError("no picture given: tinyrt run %s PICTURE... (files or folders)" % args.model)
    model = Model(args.model, **recipe_options(args))
    sources, _ = expand_sources(list(args.images))
    several = len(sources) > 1 or any(os.path.isdir(a) for a in args.images)
    show_bar = args.progress if args.progress is not None else (len(sources) > 1 and sys.stderr.isatty())
    bar = Progress(len(sources), bool(show_bar) and len(sources) > 1)
    opts = {"topk": args.topk, "score": args.score, "lang": args.lang}
    if args.save:
        opts["save"] = args.save if args.save.endswith(("/", os.sep)) else args.save + os.sep
    collected, failures = [], 0
    for i, src in enumerate(sources):
        bar.update(i, src)
        try:
            result = next(model.iter_run([src], several=True, **opts))
        except TinyrtError as e:
            if not several:
                raise
            bar.clear()
            print("tinyrt: error: %s" % e, file=sys.stderr)
            failures += 1
            continue
        bar.clear()
        if args.json:
            collected.append(result.as_dict())
        else:
            print(result.text())
            if getattr(result, "saved", None):
                print("  saved %s" % result.saved)
            sys.stdout.flush()
    bar.finish()
    if args.json:
        print(json.dumps(collected, ensure_ascii=False, indent=2))
    if failures:
        print("tinyrt: %d of %d pictures failed" % (failures, len(sources)), file=sys.stderr)
        return 2
    return 0
