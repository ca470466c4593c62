"""The sample script written beside every exported model (``<out stem>.py``, like MMEdu's).

It needs only tinyrt (or onnxruntime with ``--ort``), numpy and Pillow, and reads the class names, the
preprocessing and the detection threshold from the model file's metadata, so it stays right when the model file
is replaced. Its preprocessing is MMEdu's BaseDT / XEduHub's, restated in numpy (as tinyrt/vision/basedt.py),
so it prints what tinyrt.run and XEduHub say.
"""

from tinyrt.vision.preprocess import IMAGENET_MEAN, IMAGENET_STD

TEMPLATE = r'''#!/usr/bin/env python3
"""Run {model} on a picture and print what it sees.

    python {script} picture.jpg          # with tinyrt (needs only numpy and Pillow)
    python {script} picture.jpg --ort    # the same with onnxruntime

{marker} ({task} model). The class names and the preprocessing (resize, crop, mean,
std) come from the model file's metadata, so this script stays right if you replace {model}.
"""
import argparse
import json
import os

import numpy as np
from PIL import Image

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), {model_literal})


def read_picture(path, gray):
    """The picture as MMEdu's BaseDT reads it (OpenCV's imdecode): no EXIF rotation, transparency on white."""
    img = Image.open(path)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        a = np.asarray(img.convert("RGBA"), dtype=np.float32)
        alpha = a[:, :, 3:] / np.float32(255.0)
        rgb = (a[:, :, :3] * alpha + (np.float32(1.0) - alpha) * np.float32(255)).astype(np.uint8)
    elif img.mode in ("1", "L"):
        rgb = np.repeat(np.asarray(img.convert("L"))[:, :, None], 3, axis=2)
    else:
        rgb = np.asarray(img.convert("RGB"))
    if gray:   # BaseDT's _rgb2gray: these weights meet OpenCV's B, G, R order
        if img.mode in ("1", "L"):
            return rgb[:, :, :1]
        bgr = rgb[:, :, ::-1].astype(np.float64)
        return np.clip(np.dot(bgr, [0.2989, 0.5870, 0.1140]), 0, 255).astype(np.uint8)[:, :, None]
    return rgb


def resize_linear(x, h, w):
    """OpenCV's cv2.resize(x, (w, h), interpolation=INTER_LINEAR) of a float32 H x W x C picture."""
    def axis(n_in, n_out):
        f = ((np.arange(n_out) + 0.5) * (1.0 / (n_out / float(n_in))) - 0.5).astype(np.float32)
        s = np.floor(f).astype(np.int64)
        return s, (f - s).astype(np.float32)
    if x.shape[0] == 2 * h and x.shape[1] == 2 * w:              # OpenCV: an exact halving is a 2x2 mean
        return ((x[0::2, 0::2] + x[0::2, 1::2]) + (x[1::2, 0::2] + x[1::2, 1::2])) * np.float32(0.25)
    sx, fx = axis(x.shape[1], w)
    edge = (sx < 0) | (sx >= x.shape[1] - 1)                    # past the sides: the edge pixel alone
    fx[edge] = 0
    sx = np.clip(sx, 0, x.shape[1] - 1)
    cols = x[:, sx] * (1 - fx)[None, :, None] + x[:, np.minimum(sx + 1, x.shape[1] - 1)] * fx[None, :, None]
    sy, fy = axis(x.shape[0], h)                                # rows: indices clamped, weights kept
    top, bottom = cols[np.clip(sy, 0, x.shape[0] - 1)], cols[np.clip(sy + 1, 0, x.shape[0] - 1)]
    return (top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]).astype(np.float32)


def preprocess(path, pre):
    """Picture file -> float32 [1, C, H, W] as the model expects it, and the picture's (width, height).

    MMEdu's BaseDT / XEduHub steps: normalise the float picture, then OpenCV's bilinear resize, then crop."""
    img = read_picture(path, pre["color"] != "RGB")
    original_size = (img.shape[1], img.shape[0])
    inv_std = (1.0 / np.array(pre["std"], np.float64)).astype(np.float32)
    x = (img.astype(np.float32) - np.array(pre["mean"], np.float32)) * inv_std
    h, w = pre["resize"]
    x = resize_linear(x, h, w)                                  # squash to the resize size
    if pre.get("crop"):                                         # then cut the centre out
        ch, cw = pre["crop"]
        left, top = int(round((w - cw) / 2.0)), int(round((h - ch) / 2.0))
        x = x[top:top + ch, left:left + cw]
    return x.transpose(2, 0, 1)[None].astype(np.float32), original_size


def read_metadata(sess):
    """(task, class names, preprocessing, detection threshold) from the model file."""
    meta = sess.get_modelmeta().custom_metadata_map
    if "tinyrt.preprocess" in meta:
        thr = float(meta.get("tinyrt.report_threshold", 0.3))
        return (meta["tinyrt.task"], json.loads(meta["tinyrt.classes"]), json.loads(meta["tinyrt.preprocess"]),
                thr)
    # a file exported by MMEdu / XEdu: class names in MODEL_INFO or CLASSES, BaseDT's preprocessing
    info = json.loads(meta.get("MODEL_INFO", "{{}}"))
    classes = info.get("classes") or meta.get("CLASSES", "").split("|")
    det = len(sess.get_outputs()) == 2
    pre = {{"color": "RGB", "resize": [320, 320] if det else [256, 256], "crop": None if det else [224, 224],
           "mean": {imagenet_mean!r}, "std": {imagenet_std!r}}}
    return ("detection" if det else "classification"), classes, pre, 0.3    # XEduHub's thr


def main():
    parser = argparse.ArgumentParser(description="Run %s on a picture." % os.path.basename(MODEL))
    parser.add_argument("image", help="a picture file (jpg, png, ...)")
    parser.add_argument("--ort", action="store_true", help="use onnxruntime instead of tinyrt")
    parser.add_argument("--thr", type=float, help="detection: the score an object needs (default: the model "
                        "file's, which tinyrt.run and `tinyrt run` use too)")
    args = parser.parse_args()
    if not os.path.isfile(args.image):                          # a folder, a typo: say so, not a traceback
        parser.error("%s is %s: give one picture file" % (
            args.image, "a folder" if os.path.isdir(args.image) else "not a file"))
    if args.ort:
        import onnxruntime as ort
    else:
        import tinyrt as ort
    sess = ort.InferenceSession(MODEL)
    task, classes, pre, thr = read_metadata(sess)
    x, (width, height) = preprocess(args.image, pre)
    outputs = sess.run(None, {{sess.get_inputs()[0].name: x}})

    if task == "classification":
        probs = outputs[0][0]
        idx = int(np.argmax(probs))
        print("top-1: label %d (%s), score %.4f" % (idx, classes[idx], probs[idx]))
    else:
        dets, labels = outputs[0][0], outputs[1][0]             # boxes in model-input pixels
        sx, sy = width / float(x.shape[3]), height / float(x.shape[2])
        if args.thr is None:
            print("objects scoring at least %g (the model file's threshold; --thr to change it)" % thr)
        else:
            thr = args.thr
            print("objects scoring at least %g (--thr)" % thr)
        found = 0
        for (x1, y1, x2, y2, score), label in zip(dets, labels):
            if score <= 0 or score < thr:                       # padding rows, and scores under the threshold
                continue
            found += 1
            print("label %d (%s), score %.4f, box (%.1f, %.1f, %.1f, %.1f)"
                  % (label, classes[label], score, x1 * sx, y1 * sy, x2 * sx, y2 * sy))
        if not found:
            print("no objects found")


if __name__ == "__main__":
    main()
'''


MARKER = "Written by tinyrt's exporter"  # how the exporter knows a .py it may replace is its own


def render(model_filename, task):
    """The script's text for a model file named ``model_filename`` (in the same folder as the script).

    The file name reaches the script's code only as ``repr()`` (a quote in it cannot end the string and
    run code), and its docstring only when the name is plain (letters, digits, ``.``, ``-``, ``_``,
    spaces): a docstring cannot be escaped.
    """
    import os
    stem = os.path.splitext(model_filename)[0]
    return TEMPLATE.format(model=_shown(model_filename, "the model file beside this script"),
                           script=_shown(stem + ".py", "this_script.py"), task=_shown(task, "a"),
                           model_literal=repr(model_filename), marker=MARKER,
                           imagenet_mean=IMAGENET_MEAN, imagenet_std=IMAGENET_STD)


def _shown(name, instead):
    import re
    return name if re.match(r"[\w.\- ]+\Z", name) else instead


def is_sample_script(path):
    """True when ``path`` is a sample script this exporter wrote (so writing a new one may replace it)."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            head = f.read(2048)
    except OSError:
        return False
    return MARKER in head
