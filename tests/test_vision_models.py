"""Models and pictures shared by test_vision.py, test_api.py and test_tinyrt_cli.py (no tests here).

Built once per test process into one temporary folder (``models()``):

* ``cls``: a MobileNetV2 (width 0.35, input 64, classes cat/dog/bird) converted by the exporter
  (``exporter.convert``, seeded weights, tinyrt metadata);
* ``det``: an SSD-Lite (width 0.25, input 160, classes person/car/dog) converted by the exporter from a
  checkpoint whose background logits are biased, like a trained detector, so that a handful of boxes score
  well above the rest instead of 200 near-equal ones (random weights alone give the latter);
* ``mmedu``: a file laid out the way MMEdu's ``convert`` writes a classifier: torch.onnx.export of a
  softmaxed MobileNetV2 with ``keep_initializers_as_inputs=True`` at opset 11, input ``input``
  [1, 3, 224, 224], output ``probs``, and only the ``MODEL_INFO`` metadata; the torch module is kept to
  compute MMEdu's answer;
* ``jpeg``: a 240x180 JPEG with gradients and shapes; ``gray_png``: a grayscale PNG.
"""
import json
import os
import shutil
import sys
import tempfile
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLASSES = ["cat", "dog", "bird"]
DET_CLASSES = ["person", "car", "dog"]
MMEDU_CLASSES = ["cat", "dog", "bird", "fish", "horse"]
_built = {}


def picture(path, size=(240, 180), seed=0):
    """A JPEG with gradients, a disc and a rectangle (something for the networks to look at)."""
    from PIL import Image, ImageDraw
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1).astype(np.uint8)
    im = Image.fromarray(rgb)
    d = ImageDraw.Draw(im)
    rs = np.random.RandomState(seed)
    d.ellipse((w // 6, h // 6, w // 2, 2 * h // 3), fill=tuple(int(v) for v in rs.randint(0, 256, 3)))
    d.rectangle((7 * w // 12, 4 * h // 9, 11 * w // 12, 8 * h // 9), fill=(30, 30, 200))
    im.save(path, quality=92)
    return path


def _mmedu(folder):
    import torch
    sys.path.insert(0, HERE)
    import torch_models
    from exporter.convert import ClassifierExport
    from exporter.models.mobilenetv2 import MobileNetV2

    torch.manual_seed(2)
    net = torch_models.randomize(MobileNetV2(num_classes=len(MMEDU_CLASSES), width_mult=0.35), seed=2,
                                 input_shape=(4, 3, 224, 224))
    module = ClassifierExport(net)  # the network followed by Softmax, as MMEdu's convert writes it
    path = os.path.join(folder, "mmedu_catdog.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, 3, 224, 224),), path, input_names=["input"],
                          output_names=["probs"], opset_version=11, do_constant_folding=True,
                          keep_initializers_as_inputs=True, dynamo=False)
    import onnx
    m = onnx.load(path)
    entry = m.metadata_props.add()
    entry.key, entry.value = "MODEL_INFO", json.dumps({"codebase": "MMCls", "modelname": "MobileNet",
                                                       "classes": MMEDU_CLASSES})
    onnx.save(m, path)
    return path, module


def _detector(folder):
    import torch
    sys.path.insert(0, HERE)
    import torch_models
    from exporter import convert
    from exporter.models.ssdlite import SSDLite
    torch.manual_seed(3)
    net = torch_models.randomize(SSDLite(num_classes=len(DET_CLASSES), width_mult=0.25, input_size=160), seed=3,
                                 input_shape=(2, 3, 160, 160))
    c1 = len(DET_CLASSES) + 1
    with torch.no_grad():
        for conv in net.bbox_head.cls_convs:
            conv[1].bias.view(-1, c1)[:, -1] += 4.0     # background last: most anchors become background
    ckpt = os.path.join(folder, "det.pth")
    torch.save({"meta": {"CLASSES": DET_CLASSES}, "state_dict": net.state_dict()}, ckpt)
    return convert("SSD_Lite", checkpoint=ckpt, out_file=os.path.join(folder, "det.onnx"), width_mult=0.25,
                   input_size=160, log=None).onnx_path


def models():
    """{name: path} (and 'mmedu_module': the torch module), built on first call."""
    if not _built:
        import atexit
        from exporter import convert
        folder = tempfile.mkdtemp(prefix="tinyrt-vision-")
        atexit.register(shutil.rmtree, folder, True)
        with open(os.path.join(folder, "classes.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(CLASSES) + "\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls = convert("MobileNet", out_file=os.path.join(folder, "cls.onnx"),
                          class_path=os.path.join(folder, "classes.txt"), width_mult=0.35, input_size=64,
                          log=None).onnx_path
            det = _detector(folder)
            mmedu, module = _mmedu(folder)
        from PIL import Image
        gray = os.path.join(folder, "gray.png")
        Image.fromarray(np.tile(np.arange(0, 250, 2, dtype=np.uint8), (90, 1))).save(gray)
        _built.update(folder=folder, cls=cls, det=det, mmedu=mmedu, mmedu_module=module,
                      jpeg=picture(os.path.join(folder, "pic.jpg")), gray_png=gray)
    return _built
