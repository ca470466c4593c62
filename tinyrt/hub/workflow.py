"""``Workflow``: XEduHub's ``Workflow(task='mmedu', ...)`` on tinyrt, so a student's XEduHub code runs unchanged.

    from tinyrt.hub import Workflow as wf            # was: from XEdu.hub import Workflow as wf
    model = wf(task='mmedu', checkpoint='catdog.onnx')
    result, img = model.inference(data='cat.jpg', img_type='cv2')
    model.format_output(lang='zh')

What XEduHub 2.0.0 does for ``task='mmedu'`` (``workflow.py`` + ``BaseDeploy.py``), and so this does:

* the file's ``MODEL_INFO`` (``codebase`` MMCls / MMDet, ``modelname``, ``classes``) picks BaseDT's
  preprocessing (tinyrt/vision/basedt.py); a file without it is fed at its input size with ImageNet's mean/std;
* classification: one dict ``{'标签': index, '置信度': the output at that index, '预测结果': name}``;
* detection: a list of ``{'标签', '置信度', '坐标': {'x1', 'y1', 'x2', 'y2'}, '预测结果'}`` for the rows scoring
  ``>= thr`` (default 0.3), boxes scaled to the picture by (W / input width, H / input height) and truncated to
  int; the values are numpy scalars, as XEduHub's are;
* a folder gives a list, one entry per picture (its .jpg/.jpeg/.png files, in ``os.listdir`` order);
* ``img_type='cv2'`` also returns the picture with the answer drawn, BGR uint8 of the picture's size;
  ``'pil'`` the same in RGB; ``show=True`` opens it; a class scoring under ``thr`` is not drawn;
* ``format_output(lang=...)`` prints and returns the last result, whatever ``lang`` (XEduHub does the same for
  ``mmedu``; ``tinyrt.run(..., lang='en')`` gives English keys).

Numpy arrays given as ``data`` are OpenCV pictures (BGR), as in XEduHub.
"""
import os
import pprint

import numpy as np

from ..errors import InputError
from ..vision.preprocess import IMAGENET_MEAN, IMAGENET_STD

TASKS = ("mmedu",)
EXTENSIONS = (".jpg", ".jpeg", ".png")


class Workflow:
    """XEduHub's Workflow for ``task='mmedu'``: models from MMEdu or from tinyrt's exporter."""

    @classmethod
    def support_task(cls):
        return list(TASKS)

    def __init__(self, task=None, checkpoint=None, download_path=None, repo=None, **kwargs):
        task = str(task).lower() if task is not None else None
        if task not in TASKS:
            raise InputError("task=%r: tinyrt.hub runs task='mmedu' (ONNX files from MMEdu or tinyrt's exporter); "
                             "XEduHub's other tasks download their own models, which tinyrt does not" % (task,))
        if checkpoint is None:
            raise InputError("task='mmedu' needs checkpoint='your_model.onnx' (exported by MMEdu or tinyrt)")
        checkpoint = os.fspath(checkpoint)
        if not os.path.exists(checkpoint):
            raise InputError("no such model file: %s" % checkpoint)
        if os.path.splitext(checkpoint)[1].lower() != ".onnx":
            raise InputError("%s: task='mmedu' takes an .onnx file" % checkpoint)
        self.task = task
        self.checkpoint = checkpoint
        self.model = _load(checkpoint)
        self.result = None
        self._img_type = None
        print("%s任务模型加载成功！" % self.task)

    def inference(self, data=None, show=False, img_type=None, thr=0.3, **kwargs):
        """The answer for ``data`` (a picture file, a folder, or an OpenCV BGR array); with ``img_type`` also
        the drawn picture: ``(result, img)``."""
        if img_type is not None and str(img_type).lower() not in ("cv2", "pil"):
            raise InputError("img_type=%r: None, 'cv2' or 'pil'" % (img_type,))
        self._img_type = img_type
        if isinstance(data, (str, os.PathLike)) and os.path.isdir(data):
            folder = os.fspath(data)
            sources = [os.path.join(folder, f) for f in os.listdir(folder)
                       if os.path.isfile(os.path.join(folder, f)) and f.lower().endswith(EXTENSIONS)]
            if not sources:
                raise InputError("the folder %s holds no .jpg/.jpeg/.png pictures" % folder)
        elif isinstance(data, (str, os.PathLike, np.ndarray)):
            sources = [data]
        else:
            raise InputError("data is a picture file, a folder or an OpenCV (BGR) numpy array; got %s"
                             % type(data).__name__)
        answers, images = [], []
        for src in sources:
            answer, image = self._one(src, thr, draw=img_type is not None or show)
            answers.append(answer)
            images.append(image)
        self.result = answers[0] if len(answers) == 1 else answers
        if show:
            for image in images:
                _show(image)
        if img_type is None:
            return self.result
        if str(img_type).lower() == "cv2":
            images = [np.ascontiguousarray(im[:, :, ::-1]) for im in images]
        return self.result, images[0] if len(images) == 1 else images

    def predict(self, data=None, **kwargs):
        kwargs.pop("img_type", None)
        return self.inference(data=data, show=False, **kwargs)

    def format_output(self, lang="zh", isprint=True, **kwargs):
        """The last result (XEduHub's keys whatever ``lang``), pretty-printed when ``isprint``."""
        if self.result is None:
            raise InputError("call inference(...) before format_output()")
        if isprint:
            pprint.pprint(self.result, sort_dicts=False)
        return self.result

    def show(self, img):
        if isinstance(img, tuple):
            img = img[1]
        rgb = img[:, :, ::-1] if str(self._img_type).lower() == "cv2" else img
        _show(rgb)

    def save(self, img, save_path):
        """Write a drawn picture (as returned with ``img_type``) to ``save_path``."""
        from ..vision.image import pillow
        if isinstance(img, tuple):
            img = img[1]
        rgb = img[:, :, ::-1] if str(self._img_type).lower() == "cv2" else img
        im = pillow().fromarray(np.ascontiguousarray(rgb))
        im.save(save_path)

    def _one(self, src, thr, draw):
        color = "BGR" if isinstance(src, np.ndarray) else "RGB"
        r = self.model.run(src, color=color, score=thr, keep_image=True)
        outs = r.outputs
        names = self.model.recipe.classes
        if self.model.task == "classification":
            probs = np.asarray(outs.get("probs", list(outs.values())[0]))
            probs = probs[np.newaxis, :] if probs.ndim == 1 else probs
            idx = np.argmax(probs, axis=1)[0]
            answer = {"标签": idx, "置信度": probs[0][idx]}
            if names:
                answer["预测结果"] = names[idx]
            drawn = draw and answer["置信度"] >= thr
        else:
            answer = xeduhub_detections(outs, r.input.shape, (r.width, r.height), names, thr)
            drawn = draw
        image = r.image
        if draw and drawn:
            from ..vision.draw import annotate
            shown = r if self.model.task == "detection" else r[:1]
            image = np.asarray(annotate(r.image, _as_result(r, shown)).convert("RGB"))
        return answer, image


def xeduhub_detections(outs, input_shape, picture_size, names, thr):
    """BaseDeploy's print_single_det: rows scoring >= thr, boxes in picture pixels truncated to int."""
    values = list(outs.values())
    dets = np.asarray(outs.get("dets", values[0]))[0]
    labels = np.asarray(outs.get("labels", values[1] if len(values) > 1 else None))[0]
    width, height = picture_size
    sx, sy = width / float(input_shape[3]), height / float(input_shape[2])
    found = []
    for box, label in zip(dets, labels):
        if box[4] >= thr and label >= 0:
            mapped = np.array([box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy, box[4]], np.float64)
            b = mapped.astype(np.int32)
            item = {"标签": label, "置信度": mapped[4], "坐标": {"x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3]}}
            if names:
                item["预测结果"] = names[int(label)] if 0 <= int(label) < len(names) else str(int(label))
            found.append(item)
    return found


def _as_result(r, predictions):
    from ..vision.results import ImageResult
    return ImageResult(list(predictions), r.task, width=r.width, height=r.height, classes=r.classes)


def _show(rgb):
    from ..vision.image import pillow
    pillow().fromarray(np.ascontiguousarray(rgb)).show()


def _load(checkpoint):
    """A tinyrt Model for ``checkpoint``; a file without metadata is fed as BaseDeploy feeds one (input size,
    ImageNet mean/std, normalised before the resize)."""
    from ..api import Model
    from ..session import InferenceSession
    sess = InferenceSession(checkpoint)
    meta = sess.get_modelmeta().custom_metadata_map
    if "tinyrt.preprocess" in meta or "MODEL_INFO" in meta or "CLASSES" in meta:
        return Model(sess)
    print("The onnx model is not exported by the XEdu tool. tinyrt feeds it at its input size with "
          "'mean': %s, 'std': %s" % (IMAGENET_MEAN, IMAGENET_STD))
    return Model(sess, mean=IMAGENET_MEAN, std=IMAGENET_STD, pipeline="basedt")
