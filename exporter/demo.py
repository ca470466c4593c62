"""``python -m exporter demo`` (what ``make demo`` runs).

A MobileNet (MobileNetV2, mmcls layout, random seeded weights with calibrated BatchNorm statistics) for
the classes cat and dog is saved as an MMEdu-style checkpoint, converted with verification to
``out/demo.onnx`` (+ ``out/demo.py``), the written sample script is run on a generated JPEG with tinyrt
(and onnxruntime), and torch, onnxruntime and tinyrt are compared on that picture: agreement and speed.
"""
import importlib.util
import os
import subprocess
import sys

import numpy as np


def _make_picture(path, size=(320, 240), seed=0):
    """A colourful synthetic picture (gradient, discs, stripes): something for the model to look at."""
    from PIL import Image, ImageDraw
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([255 * xx / w, 255 * yy / h, 128 + 100 * np.sin(xx / 17.0) * np.cos(yy / 23.0)], axis=-1)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    rs = np.random.RandomState(seed)
    for _ in range(6):
        x, y, r = rs.randint(0, w), rs.randint(0, h), rs.randint(10, 60)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rs.randint(0, 256, 3)))
    for i in range(0, w, 40):
        draw.line((i, 0, i + 60, h), fill=(250, 250, 250), width=4)
    img.save(path, quality=90)
    return path


def _load_script(path):
    spec = importlib.util.spec_from_file_location("_demo_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_demo(out_dir="out", input_size=224, repeats=5, log=print):
    import torch
    from .convert import ClassifierExport, convert
    from .models import get_backbone
    from .models._layers import randomize
    from .verify import benchmark, compare

    os.makedirs(out_dir, exist_ok=True)
    classes = ["cat", "dog"]
    ckpt = os.path.join(out_dir, "demo.pth")
    spec = get_backbone("MobileNet")
    model = randomize(spec.build(len(classes), 1.0, input_size), seed=0, input_shape=(2, 3, input_size, input_size))
    torch.save({"meta": {"CLASSES": classes}, "state_dict": model.state_dict()}, ckpt)
    log("1. saved a MobileNet checkpoint (random seeded weights, classes cat/dog): %s" % ckpt)

    log("2. convert it (the same as: python -m exporter convert --backbone MobileNet --checkpoint %s "
        "--out %s)" % (ckpt, os.path.join(out_dir, "demo.onnx")))
    result = convert("MobileNet", checkpoint=ckpt, out_file=os.path.join(out_dir, "demo.onnx"),
                     input_size=input_size, log=lambda m: log("   " + m))

    picture = _make_picture(os.path.join(out_dir, "demo.jpg"))
    log("3. run the written script on a generated picture: python %s %s"
        % (os.path.relpath(result.script_path), picture))
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    runs = [("tinyrt", [])]
    try:
        import onnxruntime  # noqa: F401
        runs.append(("onnxruntime", ["--ort"]))
    except ImportError:
        pass
    for name, flag in runs:
        out = subprocess.run([sys.executable, result.script_path, picture] + flag, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        log("   %-12s %s" % (name + ":", out.stdout.strip()))
        if out.returncode != 0:
            log("   the script failed (exit code %d)" % out.returncode)
            return 1

    log("4. torch, onnxruntime and tinyrt on that picture:")
    script = _load_script(result.script_path)
    sessions = result.report.sessions
    meta_pre = __import__("json").loads(result.metadata["tinyrt.preprocess"])
    x, _ = script.preprocess(picture, meta_pre)
    module = ClassifierExport(model)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    timings = {}
    with torch.no_grad():
        timings["torch"] = benchmark(lambda: module(torch.from_numpy(x)), repeats)
    log("   %-12s probs %s" % ("torch", np.array2string(ref[0], precision=6)))
    for name in ("onnxruntime", "tinyrt"):
        sess = sessions.get(name)
        if sess is None:
            continue
        got = sess.run(None, {"input": x})[0]
        diff, tol, ok, _ = compare(ref, got)
        log("   %-12s probs %s  max |diff| vs torch %.2g %s" % (name, np.array2string(got[0], precision=6), diff,
                                                                "(agrees)" if ok else "(DIFFERS)"))
        timings[name] = benchmark(lambda: sess.run(None, {"input": x}), repeats)
    log("5. speed, median of %d runs, batch 1, %dx%d: %s" % (
        repeats, input_size, input_size, ", ".join("%s %.1f ms" % (k, v * 1000) for k, v in timings.items())))
    return 0
