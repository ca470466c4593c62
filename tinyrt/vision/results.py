"""Answers: what ``tinyrt.run`` returns.

* ``Prediction``: one class (``label``, ``score``, ``name``) or one object (plus ``box`` = (x1, y1, x2, y2) in
  picture pixels). It is a dict, so ``p["name"]`` works, and ``p.name`` too. With ``lang="zh"`` its keys are
  MMEdu's / BaseDeploy's: ``标签``, ``置信度``, ``预测结果`` and ``坐标`` = {"x1", "y1", "x2", "y2"}, so code
  written for them runs unchanged (``p.label`` etc. still work).
* ``ImageResult``: the predictions for one picture (a list: top-k classes, or the objects found), with the
  picture's ``path``, ``width``, ``height``, the network ``input`` and raw ``outputs``, ``save()`` and
  ``show()``.
* ``Results``: one ImageResult per picture, for a list or a folder.

All of them print readably.
"""
import os

import numpy as np

from ..errors import InputError

KEYS = {
    "en": ("label", "score", "name", "box"),
    "zh": ("标签", "置信度", "预测结果", "坐标"),      # MMEdu / BaseDeploy
}


def check_lang(lang):
    if lang not in KEYS:
        raise InputError("lang=%r: one of %s" % (lang, ", ".join(sorted(KEYS))))
    return lang


class Prediction(dict):
    """One class or object. A dict ({label, score, name[, box]}) with attributes of the same names."""

    def __init__(self, label, score, name, box=None, lang="en"):
        k = KEYS[check_lang(lang)]
        dict.__init__(self)
        self[k[0]] = int(label)
        self[k[1]] = float(score)
        self[k[2]] = name
        if box is not None:
            x1, y1, x2, y2 = (round(float(v), 2) for v in box)
            self[k[3]] = {"x1": x1, "y1": y1, "x2": x2, "y2": y2} if lang == "zh" else (x1, y1, x2, y2)
        self._lang = lang

    @property
    def label(self):
        return self[KEYS[self._lang][0]]

    @property
    def score(self):
        return self[KEYS[self._lang][1]]

    @property
    def name(self):
        return self[KEYS[self._lang][2]]

    @property
    def box(self):
        """(x1, y1, x2, y2) in picture pixels, or None for a class."""
        b = self.get(KEYS[self._lang][3])
        if isinstance(b, dict):
            return (b["x1"], b["y1"], b["x2"], b["y2"])
        return b

    def __repr__(self):
        parts = []
        for key, value in self.items():
            if isinstance(value, float):
                text = "%.4f" % value
            elif isinstance(value, dict):
                text = "{" + ", ".join("%r: %.1f" % kv for kv in value.items()) + "}"
            elif isinstance(value, tuple):
                text = "(" + ", ".join("%.1f" % v for v in value) + ")"
            else:
                text = repr(value)
            parts.append("%r: %s" % (key, text))
        return "{" + ", ".join(parts) + "}"

    def text(self):
        """One line for people: ``dog 0.9417 (label 1)`` [``box (x1, y1, x2, y2)``]."""
        line = "%s %.4f (label %d)" % (self.name, self.score, self.label)
        if self.box is not None:
            line += "  box (%s)" % ", ".join("%.1f" % v for v in self.box)
        return line

    def as_dict(self):
        """Plain JSON-able dict (boxes as lists)."""
        d = {}
        for key, value in self.items():
            d[key] = list(value) if isinstance(value, tuple) else value
        return d


class ImageResult(list):
    """The predictions for one picture: a list of Prediction, best first."""

    def __init__(self, predictions, task, path=None, width=None, height=None, image=None, input=None,
                 outputs=None, classes=None, lang="en"):
        list.__init__(self, predictions)
        self.task = task
        self.path = path                  # the file, or None for an array / PIL image
        self.width, self.height = width, height
        self.image = image                # RGB uint8 HxWx3 (kept for pictures not read from a file)
        self.input = input                # what the network was fed: float32 [1, C, H, W]
        self.outputs = outputs            # the network's raw outputs {name: array}
        self.classes = classes or []
        self.lang = lang
        self.saved = None                 # the file written by save= (run) or save()
        self.threshold = None             # detection: the score an object needed (>=), and where it came from
        self.threshold_source = None

    @property
    def top(self):
        """The best prediction, or None (no object found)."""
        return self[0] if self else None

    def picture(self):
        """The picture as RGB uint8 HxWx3 (read again from its file when not kept)."""
        if self.image is not None:
            return self.image
        from .image import read_image
        return read_image(self.path)

    def draw(self):
        """A PIL image with the answer drawn on the picture (needs Pillow)."""
        from .draw import annotate
        return annotate(self.picture(), self)

    def save(self, path):
        """Draw the answer and write the picture to ``path`` (a file, or a folder: same name as the picture).
        Returns the path written."""
        import os
        from .draw import output_path
        target = output_path(path, self.path, multiple=False)
        folder = os.path.dirname(target)
        if folder:
            os.makedirs(folder, exist_ok=True)
        im = self.draw()
        if target.lower().endswith((".jpg", ".jpeg")):
            im.save(target, quality=95)
        else:
            im.save(target)
        self.saved = target
        return target

    def show(self):
        """Draw the answer and open it in the picture viewer (Pillow's ``Image.show``); on a Linux machine
        without a display (no DISPLAY / WAYLAND_DISPLAY) a warning says so instead of nothing happening."""
        import sys
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            import warnings
            warnings.warn("show=True: this machine has no display (DISPLAY is not set), so nothing can be shown; "
                          "save='answer.jpg' writes the drawing to a file instead", stacklevel=2)
            return
        self.draw().show()

    def as_dict(self):
        d = {"image": self.path, "width": self.width, "height": self.height, "task": self.task,
             "predictions": [p.as_dict() for p in self]}
        if getattr(self, "saved", None):
            d["saved"] = self.saved
        if self.threshold is not None:
            d["score_threshold"] = self.threshold
            d["score_threshold_from"] = self.threshold_source
        return d

    def threshold_text(self):
        """``score >= 0.3, the model file's threshold`` (detection), or ''."""
        if self.threshold is None:
            return ""
        return "score >= %g, %s" % (self.threshold, {"score=": "given as score="}.get(
            self.threshold_source, "from " + str(self.threshold_source)))

    def text(self):
        head = "%s (%sx%s)" % (self.path or "picture", self.width, self.height)
        if self.task == "detection":
            thr = " (%s)" % self.threshold_text() if self.threshold is not None else ""
            if not self:
                return head + ": no objects found" + thr
            lines = [head + ": %d object%s%s" % (len(self), "" if len(self) == 1 else "s", thr)]
        elif len(self) == 1:
            return head + ": " + self[0].text()
        else:
            lines = [head + ":"]
        lines += ["  %d. %s" % (i + 1, p.text()) for i, p in enumerate(self)]
        return "\n".join(lines)

    def __str__(self):
        # lang="zh" prints the list of dicts, as MMEdu / BaseDeploy do; otherwise one line a prediction
        return list.__repr__(self) if self.lang == "zh" else self.text()

    def __repr__(self):
        return list.__repr__(self)


class Results(list):
    """One ImageResult per picture."""

    def __str__(self):
        return "\n".join(str(r) for r in self)

    def as_dict(self):
        return [r.as_dict() for r in self]


def classification(probs, recipe, topk, lang):
    """[C] scores -> top-k Predictions."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    softmax = recipe.softmax
    if softmax is None:            # unknown: apply it unless these are probabilities already
        softmax = not (p.min() >= 0 and abs(p.sum() - 1.0) < 1e-3)
    if softmax:
        e = np.exp(p - p.max())
        p = e / e.sum()
    k = len(p) if topk is None or topk <= 0 else min(int(topk), len(p))
    order = np.argsort(-p, kind="stable")[:k]       # ties: the lower label first
    return [Prediction(int(i), float(p[i]), recipe.name_of(int(i)), lang=lang) for i in order]


def detection(dets, labels, geometry, recipe, score, lang):
    """dets [K, 5] (network pixels + score), labels [K] -> Predictions above ``score``, boxes in picture pixels.

    Padding rows (score 0, label -1) are skipped."""
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    keep = (dets[:, 4] > 0) & (labels >= 0)
    if score is not None:
        keep &= dets[:, 4] >= score
    rows = np.nonzero(keep)[0]
    rows = rows[np.argsort(-dets[rows, 4], kind="stable")]
    boxes = geometry.to_picture(dets[rows, :4])
    return [Prediction(int(labels[r]), float(dets[r, 4]), recipe.name_of(int(labels[r])), box=b, lang=lang)
            for r, b in zip(rows, boxes)]
