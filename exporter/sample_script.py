"""The sample script written beside every exported model (``<out stem>.py``, like MMEdu's).

It needs only tinyrt (or onnxruntime with ``--ort``), numpy and Pillow, and reads the class names and the
preprocessing from the model file's metadata, so it stays right when the model file is replaced.
"""

TEMPLATE = r'''#!/usr/bin/env python3
"""Run {model} on a picture and print what it sees.

    python {script} picture.jpg          # with tinyrt (needs only numpy and Pillow)
    python {script} picture.jpg --ort    # the same with onnxruntime

Written by tinyrt's exporter ({task} model). The class names and the preprocessing (resize, crop, mean,
std) come from the model file's metadata, so this script stays right if you replace {model}.
"""
import argparse
import json
import os

import numpy as np
from PIL import Image

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "{model}")


def preprocess(path, pre):
    """Picture file -> float32 [1, C, H, W] as the model expects it, and the picture's (width, height)."""
    img = Image.open(path).convert("RGB" if pre["color"] == "RGB" else "L")
    original_size = img.size
    h, w = pre["resize"]
    img = img.resize((w, h), Image.BILINEAR)                    # squash to the resize size
    if pre.get("crop"):                                         # then cut the centre out
        ch, cw = pre["crop"]
        left, top = int(round((w - cw) / 2.0)), int(round((h - ch) / 2.0))
        img = img.crop((left, top, left + cw, top + ch))
    x = np.asarray(img, dtype=np.float32)                       # H x W x C, values 0..255
    if x.ndim == 2:                                             # grayscale: one channel
        x = x[:, :, None]
    x = (x - np.array(pre["mean"], np.float32)) / np.array(pre["std"], np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32), original_size


def read_metadata(sess):
    """(task, class names, preprocessing) from the model file."""
    meta = sess.get_modelmeta().custom_metadata_map
    if "tinyrt.preprocess" in meta:
        return meta["tinyrt.task"], json.loads(meta["tinyrt.classes"]), json.loads(meta["tinyrt.preprocess"])
    # a file exported by MMEdu / XEdu: class names in MODEL_INFO or CLASSES, BaseDT's preprocessing
    info = json.loads(meta.get("MODEL_INFO", "{{}}"))
    classes = info.get("classes") or meta.get("CLASSES", "").split("|")
    det = len(sess.get_outputs()) == 2
    pre = {{"color": "RGB", "resize": [320, 320] if det else [256, 256], "crop": None if det else [224, 224],
           "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]}}
    return ("detection" if det else "classification"), classes, pre


def main():
    parser = argparse.ArgumentParser(description="Run {model} on a picture.")
    parser.add_argument("image", help="a picture file (jpg, png, ...)")
    parser.add_argument("--ort", action="store_true", help="use onnxruntime instead of tinyrt")
    args = parser.parse_args()
    if not os.path.isfile(args.image):                          # a folder, a typo: say so, not a traceback
        parser.error("%s is %s: give one picture file" % (
            args.image, "a folder" if os.path.isdir(args.image) else "not a file"))
    if args.ort:
        import onnxruntime as ort
    else:
        import tinyrt as ort
    sess = ort.InferenceSession(MODEL)
    task, classes, pre = read_metadata(sess)
    x, (width, height) = preprocess(args.image, pre)
    outputs = sess.run(None, {{sess.get_inputs()[0].name: x}})

    if task == "classification":
        probs = outputs[0][0]
        idx = int(np.argmax(probs))
        print("top-1: label %d (%s), score %.4f" % (idx, classes[idx], probs[idx]))
    else:
        dets, labels = outputs[0][0], outputs[1][0]             # boxes in model-input pixels
        sx, sy = width / float(x.shape[3]), height / float(x.shape[2])
        found = 0
        for (x1, y1, x2, y2, score), label in zip(dets, labels):
            if score <= 0:                                      # padding rows
                continue
            found += 1
            print("label %d (%s), score %.4f, box (%.1f, %.1f, %.1f, %.1f)"
                  % (label, classes[label], score, x1 * sx, y1 * sy, x2 * sx, y2 * sy))
        if not found:
            print("no objects found")


if __name__ == "__main__":
    main()
'''


def render(model_filename, task):
    """The script's text for a model file named ``model_filename`` (in the same folder as the script)."""
    import os
    stem = os.path.splitext(model_filename)[0]
    return TEMPLATE.format(model=model_filename, script=stem + ".py", task=task)
