"""BaseDT's ``ImageData(path, backbone=...)`` (BaseDT 0.1.3 / XEduHub 2.0.0, ``data.py``), restated with OpenCV
for the tests: the independent reference tinyrt's numpy pipeline (tinyrt/vision/basedt.py) is held to.

Only the steps the MMEdu backbones take, in BaseDT's order (its ``__dict__`` order: ``normalize`` comes before
``size`` and ``crop_size``): read with ``cv2.imdecode(..., -1)``; gray (LeNet: ``to_rgb=False``, ``np.dot`` with
(0.2989, 0.587, 0.114)) or three channels (``_to3channel``); normalise (``cvtColor`` BGR->RGB in place,
float32, ``cv2.subtract(img, mean)``, ``cv2.multiply(img, 1 / std)``); ``cv2.resize(..., INTER_LINEAR)``;
centre crop; ``to_tensor``.
"""
import numpy as np

cv2 = None

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
BACKBONES = {
    "MobileNet": {"size": (256, 256), "crop_size": (224, 224)},
    "ResNet18": {"size": (256, 256), "crop_size": (224, 224)},
    "SSD_Lite": {"size": (320, 320)},
    "LeNet": {"size": (32, 32), "to_rgb": False, "mean": [33.46], "std": [78.87]},
}


def _cv2():
    global cv2
    if cv2 is None:
        import cv2 as _c
        cv2 = _c
    return cv2


def imread(path):
    cv = _cv2()
    return cv.imdecode(np.fromfile(path, dtype=np.uint8), -1)


def basedt_input(source, backbone=None, size=None, crop_size=None, to_rgb=True, mean=MEAN, std=STD):
    """float32 [1, C, H, W] as BaseDT prepares ``source`` (a path, or an OpenCV BGR array)."""
    cv = _cv2()
    args = dict(BACKBONES[backbone]) if backbone else {}
    size = args.get("size", size)
    crop_size = args.get("crop_size", crop_size)
    to_rgb = args.get("to_rgb", to_rgb)
    mean, std = args.get("mean", mean), args.get("std", std)
    img = imread(source) if isinstance(source, str) else np.array(source)
    img = img.astype("uint8")
    if not to_rgb and img.ndim >= 3:
        img = np.clip(np.dot(img, [0.2989, 0.5870, 0.1140]), 0, 255).astype(np.uint8)
    elif to_rgb:
        if img.ndim == 2:
            img = cv.cvtColor(img, cv.COLOR_GRAY2RGB)
        elif img.shape[-1] > 3:
            rgb = np.zeros(img.shape[:2] + (3,), dtype="float32")
            a = np.asarray(img[:, :, 3], dtype="float32") / 255.0
            for c in range(3):
                rgb[:, :, c] = img[:, :, c] * a + (1.0 - a) * 255
            img = np.asarray(rgb, dtype="uint8")
    # _normalize
    m = np.float64(np.array(mean).reshape(1, -1))
    stdinv = 1 / np.float64(np.array(std).reshape(1, -1))
    if to_rgb:
        cv.cvtColor(img, cv.COLOR_BGR2RGB, img)
    img = img.astype(np.float32)
    cv.subtract(img, m, img)
    cv.multiply(img, stdinv, img)
    # _resize (size is (w, h) for cv2.resize; BaseDT's sizes are square)
    if size is not None:
        img = cv.resize(img, size, interpolation=cv.INTER_LINEAR)
    # _crop
    if crop_size is not None:
        h, w = img.shape[:2]
        ch, cw = crop_size
        y1 = max(0, int(round((h - ch) / 2.)))
        x1 = max(0, int(round((w - cw) / 2.)))
        img = img[y1:y1 + ch, x1:x1 + cw, ...]
    if to_rgb:
        return np.expand_dims(np.transpose(img, (2, 0, 1)), 0)
    return np.expand_dims(np.expand_dims(img, 0), 0)


def xeduhub_answer(onnx_path, source, thr=0.3):
    """XEduHub 2.0.0's ``Workflow(task='mmedu').inference(data, thr=thr)`` for one picture, restated with
    onnxruntime (BaseDeploy.py: ModelData reads MODEL_INFO; ImageData(backbone=modelname); print_single_cls /
    map_orig_coords + print_single_det)."""
    import codecs
    import json
    import onnxruntime
    opts = onnxruntime.SessionOptions()
    opts.log_severity_level = 3
    sess = onnxruntime.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    info = json.loads(codecs.decode(sess.get_modelmeta().custom_metadata_map["MODEL_INFO"], "unicode_escape"))
    x = basedt_input(source, info["modelname"])
    raw = imread(source) if isinstance(source, str) else source
    outs = sess.run([o.name for o in sess.get_outputs()], {sess.get_inputs()[0].name: x})
    names = info.get("classes")
    if info["codebase"] == "MMCls":
        idx = np.argmax(outs[0], axis=1)[0]
        result = {"标签": idx, "置信度": outs[0][0][idx]}
        if isinstance(names, list):
            result["预测结果"] = names[idx]
        return result
    original_w, original_h = raw.shape[:2]          # BaseDT's names: these are (height, width)
    processed_w, processed_h = x.shape[2:]
    sx, sy = original_w / processed_w, original_h / processed_h
    boxes = np.array([[b[0] * sy, b[1] * sx, b[2] * sy, b[3] * sx, b[4]] for b in outs[0][0]]).reshape(-1, 5)
    result = []
    for box, label in zip(boxes, outs[1][0]):
        if box[4] >= thr:
            b = box.astype(np.int32)
            item = {"标签": label, "置信度": box[4], "坐标": {"x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3]}}
            if isinstance(names, list):
                item["预测结果"] = names[label]
            result.append(item)
    return result
