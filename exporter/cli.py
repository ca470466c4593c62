"""``python -m exporter``: convert a checkpoint to a verified ONNX file, or run the demo."""
import argparse
import os
import sys
import warnings

from .errors import ExporterError

CONVERT_EPILOG = """\
examples:
  # an MMEdu MobileNet checkpoint with 2 classes (cat, dog), class names from a text file
  python -m exporter convert --backbone MobileNet --checkpoint best_accuracy.pth \\
      --classes classes.txt --out out/catdog.onnx

  # then run the model on a picture with the script written beside it
  python out/catdog.py cat.jpg              # tinyrt
  python out/catdog.py cat.jpg --ort        # onnxruntime

  # an SSD-Lite detector, keeping boxes with score > 0.3 and at most 50 of them
  python -m exporter convert --backbone SSD_Lite --checkpoint ssdlite.pth --classes coco.txt \\
      --out out/coco.onnx --score-thr 0.3 --max-per-image 50

what you get:
  out/NAME.onnx   the model: input "input" [1, 3, 224, 224] (LeNet [1, 1, 32, 32], SSD_Lite
                  [1, 3, 320, 320]); classifiers give "probs" [1, C] (softmaxed), detectors "dets"
                  [1, K, 5] (x1, y1, x2, y2, score in input pixels) and "labels" [1, K]. Class names and
                  preprocessing are stored inside the file (docs/metadata.md).
  out/NAME.py     a sample script that runs it on a picture.
Every convert is checked: torch, onnxruntime and tinyrt must give the same outputs, or nothing is written.

class names come from --classes (a UTF-8 text file, one name a line), else from the checkpoint,
else they are class_0, class_1, ... (with a warning).
"""


def build_parser():
    from .convert import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
    from .models import BACKBONES
    parser = argparse.ArgumentParser(
        prog="python -m exporter",
        description="Turn a PyTorch / MMEdu checkpoint into an ONNX file that tinyrt and onnxruntime run, "
                    "with its class names and preprocessing inside, verified against torch.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback when something fails")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    names = ", ".join("%s (%s)" % (n, s.task) for n, s in BACKBONES.items())
    c = sub.add_parser("convert", help="convert a checkpoint to ONNX (+ a sample script)",
                       description="Convert a checkpoint to a verified ONNX file and a sample script.",
                       epilog=CONVERT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--backbone", metavar="NAME", help="the network, as in MMEdu: " + names + " (default: the one "
                   "the checkpoint records)")
    c.add_argument("--checkpoint", metavar="FILE.pth",
                   help="the trained weights (.pth); without it the weights are random (for trying things out)")
    c.add_argument("--classes", metavar="FILE.txt", dest="class_path",
                   help="class names, one a line (UTF-8: Chinese names are fine)")
    c.add_argument("--out", required=True, metavar="FILE.onnx", dest="out_file",
                   help="where to write the model; the sample script goes beside it as FILE.py")
    c.add_argument("--num-classes", type=int, metavar="N",
                   help="number of classes (default: the class file's or the checkpoint's count)")
    c.add_argument("--opset", type=int, default=DEFAULT_OPSET, metavar="N",
                   help="ONNX opset, %d..%d (default %d, MMEdu used 11)" % (MIN_OPSET, MAX_OPSET, DEFAULT_OPSET))
    c.add_argument("--input-size", type=int, metavar="PIXELS",
                   help="input side (default: the checkpoint's, else 224; LeNet 32 only; SSD_Lite 320); a value "
                        "the checkpoint disagrees with is refused")
    c.add_argument("--width-mult", type=float, metavar="W",
                   help="width multiplier (MobileNet's widen_factor; default: the checkpoint's, else 1.0); a value "
                        "the checkpoint disagrees with is refused")
    c.add_argument("--dynamic-batch", action="store_true", help="let the batch size vary (default: batch 1)")
    c.add_argument("--dynamo", action="store_true",
                   help="use torch's newer dynamo exporter (always writes opset 18) instead of TorchScript")
    c.add_argument("--backend", default="ONNX", help="only ONNX exists (MMEdu's option)")
    det = c.add_argument_group("detection (SSD_Lite) options, built into the model file")
    det.add_argument("--score-thr", type=float, metavar="S", help="keep boxes scoring above S (default 0.02)")
    det.add_argument("--iou-thr", type=float, metavar="T",
                     help="non-maximum suppression: a box overlapping a better one by more than T is dropped "
                          "(default 0.45)")
    det.add_argument("--max-per-image", type=int, metavar="K", dest="max_per_img",
                     help="at most K boxes per image (default 200)")
    det.add_argument("--nms-pre", type=int, metavar="N", help="best N boxes per level before NMS (default 1000)")
    det.add_argument("--report-thr", type=float, metavar="S",
                     help="the score an object needs to be reported, stored in the file and used by tinyrt.run, "
                          "`tinyrt run`, the sample script and the demo (default 0.3, XEduHub's)")
    c.add_argument("--int8", metavar="DATASET", help="write an int8 model, calibrated on the pictures in DATASET "
                   "(your dataset folder, e.g. MMEdu's with val_set/); prints the accuracy change")
    c.add_argument("--quiet", action="store_true", help="print only errors and the written paths")
    c.add_argument("--force", action="store_true",
                   help="replace an existing OUT.py even when it is not a sample script the exporter wrote")

    d = sub.add_parser("demo", help="convert the committed small models and run them on the sample pictures",
                       description="The demo `make demo` runs: the committed shapes classifier and detector "
                                   "(exporter/pretrained/) are converted with verification to ./out/demo/, "
                                   "tinyrt runs them on the sample pictures and draws the answers into "
                                   "./out/demo/annotated/, and torch, onnxruntime and tinyrt are compared for "
                                   "agreement and speed.")
    d.add_argument("--out-dir", default="out", help="the demo writes into OUT_DIR/demo (default ./out)")
    d.add_argument("--repeats", type=int, default=5, help="timed runs per runtime (median is shown)")
    return parser


def _format_warning(message, category, filename, lineno, line=None):
    return "warning: %s\n" % message


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    saved_format = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        if args.command == "convert":
            return _convert(args)
        if args.command == "demo":
            from .demo import run_demo
            return run_demo(out_dir=args.out_dir, repeats=args.repeats)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ExporterError, OSError) as e:
        if args.debug:
            raise
        print("error: %s" % _one_line(e), file=sys.stderr)
        return 2
    except Exception as e:  # a bug or an unexpected torch failure: still one line, traceback with --debug
        if args.debug:
            raise
        print("error: %s: %s (run with --debug for the traceback)" % (type(e).__name__, _one_line(e)),
              file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = saved_format
    return 0


def _convert(args):
    from .convert import convert
    log = (lambda *a, **k: None) if args.quiet else print
    result = convert(args.backbone, checkpoint=args.checkpoint, out_file=args.out_file, class_path=args.class_path,
                     num_classes=args.num_classes, opset=args.opset, input_size=args.input_size,
                     dynamic_batch=args.dynamic_batch, dynamo=args.dynamo, backend=args.backend,
                     width_mult=args.width_mult, score_thr=args.score_thr, iou_thr=args.iou_thr,
                     max_per_img=args.max_per_img, nms_pre=args.nms_pre, report_thr=args.report_thr, log=log,
                     quantize="int8" if args.int8 else None, calibration=args.int8, force=args.force)
    if args.quiet:
        print(result.onnx_path)
        print(result.script_path)
    else:
        print("try it: python %s IMAGE" % os.path.relpath(result.script_path))
    return 0


def _one_line(e):
    text = " ".join(str(e).split())
    if isinstance(e, OSError) and getattr(e, "filename", None) and e.strerror:
        text = "%s: %s" % (e.filename, e.strerror)
    return text or type(e).__name__
