"""From the model file's metadata to a ``Recipe``: how a picture becomes the network's input, what the
outputs mean and what the classes are called.

Where it comes from, first found wins (arguments always override it):

1. tinyrt's keys (``tinyrt.task``, ``tinyrt.classes``, ``tinyrt.preprocess``; docs/metadata.md);
2. XEdu / MMEdu's ``MODEL_INFO`` JSON (``codebase`` MMCls or MMDet, ``modelname``, ``classes``), with
   BaseDT's preprocessing for that backbone (``BACKBONES`` below);
3. MMEdu's older ``CLASSES`` key (names joined with ``|``), the task read from the outputs;
4. nothing: the arguments ``mean=``, ``std=`` (and ``size=`` when the input size is not fixed) must be
   given, and a clear error says so.

Two pipelines (``Recipe.pipeline``):

* ``basedt``, for MMEdu files (MODEL_INFO / CLASSES) and every file our exporter writes now: BaseDT's and
  XEduHub's steps exactly (basedt.py): no EXIF rotation, ``(x - mean) / std`` on the float picture, then
  OpenCV's INTER_LINEAR resize of the float picture (cv_linear.py), centre crop;
* ``pillow``, for files whose ``tinyrt.preprocess`` names no pipeline (older exports):
  RGB uint8 (EXIF applied) -> (GRAY) -> Pillow's bilinear resize -> centre crop -> (x - mean) / std.

Both end in CHW float32 [1, C, H, W].
"""
import json
import warnings

import numpy as np

from ..errors import InputError, ModelError
from .image import MAX_PIXELS, to_gray
from .resize import resize

IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]
MNIST_MEAN = [33.46]   # MMEdu's LeNet config (img_norm_cfg): grayscale
MNIST_STD = [78.87]

# BaseDT's per-backbone settings (MMEdu's configs): resize policy, default input size, channels, mean, std.
#   "crop": squash to round(size * 256 / 224), then cut the centre size x size (256 -> 224)
#   "resize": squash to size x size
BACKBONES = {
    "MobileNet": ("crop", 224, "RGB", IMAGENET_MEAN, IMAGENET_STD),
    "MobileNetV2": ("crop", 224, "RGB", IMAGENET_MEAN, IMAGENET_STD),
    "MobileNetV3_Small": ("crop", 224, "RGB", IMAGENET_MEAN, IMAGENET_STD),
    "MobileNetV3_Large": ("crop", 224, "RGB", IMAGENET_MEAN, IMAGENET_STD),
    "ResNet18": ("crop", 224, "RGB", IMAGENET_MEAN, IMAGENET_STD),
    "ResNet50": ("crop", 224, "RGB", IMAGENET_MEAN, IMAGENET_STD),
    "LeNet": ("resize", 32, "GRAY", MNIST_MEAN, MNIST_STD),
    "SSD_Lite": ("resize", 320, "RGB", IMAGENET_MEAN, IMAGENET_STD),
}
POLICIES = ("squash", "shorter", "letterbox")
PIPELINES = ("basedt", "pillow")

NEEDS_ARGUMENTS = ("{what} has no metadata tinyrt can use to prepare a picture (neither tinyrt.preprocess nor "
                   "MODEL_INFO / CLASSES), so say how: tinyrt.run(model, img, {size}mean=[123.675, "
                   "116.28, 103.53], std=[58.395, 57.12, 57.375], classes=['cat', 'dog']) (or on the command "
                   "line {size_flag}--mean 123.675,116.28,103.53 --std 58.395,57.12,57.375 --classes "
                   "cat,dog); missing: {missing}")


class Geometry:
    """Where the network input came from in the picture, to map boxes back.

    A network-input pixel coordinate ``u`` is ``(u - pad) / scale + offset`` in the picture (per axis)."""

    def __init__(self, width, height, scale_x=1.0, scale_y=1.0, offset_x=0.0, offset_y=0.0, pad_x=0.0, pad_y=0.0):
        self.width, self.height = width, height
        self.scale_x, self.scale_y = scale_x, scale_y
        self.offset_x, self.offset_y = offset_x, offset_y
        self.pad_x, self.pad_y = pad_x, pad_y

    def to_picture(self, boxes):
        """[K, 4] x1, y1, x2, y2 in network-input pixels -> picture pixels, clipped to the picture."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
        b[:, 0::2] = (b[:, 0::2] - self.pad_x) / self.scale_x + self.offset_x
        b[:, 1::2] = (b[:, 1::2] - self.pad_y) / self.scale_y + self.offset_y
        b[:, 0::2] = np.clip(b[:, 0::2], 0, self.width)
        b[:, 1::2] = np.clip(b[:, 1::2], 0, self.height)
        return b


def _pair(value, what):
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        h = w = int(value)
    else:
        try:
            h, w = (int(v) for v in value)
        except (TypeError, ValueError, OverflowError):
            raise InputError("%s must be a number or [height, width], got %r" % (what, value)) from None
    # a size from the file or the caller makes a picture of h x w: check it before resizing allocates it
    if h < 1 or w < 1 or h * w > MAX_PIXELS:
        raise InputError("%s=%r: sides of at least 1 pixel and at most %d pixels in all" % (what, value, MAX_PIXELS))
    return (h, w)


def _floats(value, what, channels):
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = [value]
    try:
        v = [float(x) for x in value]
    except (TypeError, ValueError):
        raise InputError("%s must be a list of numbers, got %r" % (what, value))
    if len(v) == 1 and channels > 1:
        v = v * channels
    if len(v) != channels:
        raise InputError("%s has %d values; the network takes %d channels" % (what, len(v), channels))
    return v


class Recipe:
    """Everything tinyrt.run needs to know about a model, settled once when it is loaded."""

    def __init__(self, task, classes, color, resize, crop, mean, std, policy="squash", input_name="input",
                 input_shape=None, outputs=(), source="", softmax=None, pipeline="pillow"):
        self.task = task                  # "classification" | "detection"
        self.classes = list(classes) if classes else []
        self.color = color                # "RGB" | "GRAY"
        self.resize = resize              # (h, w) or None (picture used at its own size)
        self.crop = crop                  # (h, w) or None
        self.mean, self.std = mean, std
        self.policy = policy
        self.input_name = input_name
        self.input_shape = input_shape
        self.outputs = list(outputs)
        self.source = source              # where the settings came from, for `info` and error messages
        self.softmax = softmax            # None: apply when the outputs are not probabilities already
        self.pipeline = pipeline          # "basedt" (MMEdu's tools, exactly) | "pillow" (see the module doc)

    @property
    def channels(self):
        return 1 if self.color == "GRAY" else 3

    @property
    def size(self):
        """(h, w) of the network input."""
        return self.crop or self.resize

    def name_of(self, label):
        if 0 <= label < len(self.classes):
            return self.classes[label]
        return str(label)

    def describe(self):
        norm = "(x - mean) / std, mean %s std %s" % (_short(self.mean), _short(self.std))
        if self.pipeline == "basedt":
            steps = ["BaseDT/XEduHub recipe: %s (no EXIF rotation)" % self.color, norm + " on the float picture"]
            if self.resize:
                steps.append("resize %dx%d (OpenCV INTER_LINEAR, aspect not kept)" % (self.resize[1], self.resize[0]))
        else:
            steps = ["Pillow recipe: %s" % self.color]
            if self.resize:
                steps.append("resize %dx%d (%s, Pillow bilinear)" % (self.resize[1], self.resize[0], self.policy))
        if self.crop:
            steps.append("centre crop %dx%d" % (self.crop[1], self.crop[0]))
        if self.pipeline != "basedt":
            steps.append(norm)
        steps.append("NCHW float32")
        return " -> ".join(steps)

    def read(self, img, color="RGB", background=None):
        """(the picture as this recipe's ``prepare`` takes it, RGB uint8 HxWx3 of it for drawing)."""
        if self.pipeline == "basedt":
            from .basedt import read_unrotated, three_channels
            pic = read_unrotated(img, color=color)
            return pic, three_channels(pic)
        from .image import read_image
        rgb = read_image(img, color=color, background=background)
        return rgb, rgb

    def prepare(self, rgb):
        """The picture (RGB uint8 HxWx3; for the basedt pipeline what ``read`` gives) -> (float32 [1, C, H, W],
        Geometry)."""
        height, width = rgb.shape[:2]
        if self.pipeline == "basedt":
            from .basedt import prepare
            geo = Geometry(width, height)
            return prepare(rgb, self, geo), geo
        img = to_gray(rgb)[:, :, None] if self.color == "GRAY" else rgb
        geo = Geometry(width, height)
        if self.resize:
            img, geo = self._resize(img, geo)
        if self.crop:
            ch, cw = self.crop
            h, w = img.shape[:2]
            if ch > h or cw > w:
                raise InputError("crop %dx%d is larger than the resized picture %dx%d" % (cw, ch, w, h))
            top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
            img = img[top:top + ch, left:left + cw]
            geo.pad_x -= left        # a crop is a negative padding
            geo.pad_y -= top
        x = (img.astype(np.float32) - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
        return x, geo

    def _resize(self, img, geo):
        h0, w0 = img.shape[:2]
        th, tw = self.resize
        if self.policy == "squash":
            out = resize(img, (th, tw))
            geo.scale_x, geo.scale_y = tw / float(w0), th / float(h0)
            return out, geo
        if self.policy == "shorter":             # the shorter side to the size, aspect ratio kept
            s = max(th / float(h0), tw / float(w0))
            nh, nw = max(1, int(round(h0 * s))), max(1, int(round(w0 * s)))
            if nh * nw > MAX_PIXELS:             # a 2,000,000 x 1 picture would become 2 gigapixels
                raise InputError("resize_policy='shorter' would make this %dx%d picture %dx%d, more than %d "
                                 "pixels; use 'squash' or 'letterbox' for pictures this long"
                                 % (w0, h0, nw, nh, MAX_PIXELS))
            out = resize(img, (nh, nw))
            geo.scale_x, geo.scale_y = nw / float(w0), nh / float(h0)
            return out, geo
        # letterbox: fit inside, aspect ratio kept, the rest filled with the mean colour (0 after normalising)
        s = min(th / float(h0), tw / float(w0))
        nh, nw = max(1, int(round(h0 * s))), max(1, int(round(w0 * s)))
        small = resize(img, (nh, nw))
        fill = np.clip(np.round(np.array(self.mean)), 0, 255).astype(np.uint8)
        out = np.empty((th, tw, img.shape[2]), np.uint8)
        out[:] = fill.reshape(1, 1, -1)
        top, left = (th - nh) // 2, (tw - nw) // 2
        out[top:top + nh, left:left + nw] = small
        geo.scale_x, geo.scale_y = nw / float(w0), nh / float(h0)
        geo.pad_x, geo.pad_y = float(left), float(top)
        return out, geo


def _short(values):
    return "[" + ", ".join("%g" % v for v in values) + "]"


def _json(meta, key, kind=None):
    """The JSON value of metadata ``key``, or None when absent. Broken JSON, JSON nested too deep, or a
    value that is not a ``kind`` (dict, list) is a warning, and the key is ignored: metadata is a hint."""
    if key not in meta:
        return None
    try:
        value = json.loads(meta[key])
    except (ValueError, TypeError, RecursionError) as e:
        _ignored(key, "not JSON tinyrt can read (%s)" % type(e).__name__)
        return None
    if kind is not None and not isinstance(value, kind):
        _ignored(key, "a JSON %s, where a %s belongs" % (type(value).__name__, kind.__name__))
        return None
    return value


def _names(value, key):
    """Class names from metadata: a list of strings (numbers are written as text); else a warning, None."""
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    _ignored(key, "class names that are not a list of names")
    return None


def _ignored(key, why):
    warnings.warn("tinyrt: the model's metadata %r is %s; ignored (see docs/metadata.md)" % (key, why),
                  RuntimeWarning, stacklevel=4)


def model_info(meta):
    """MMEdu's MODEL_INFO as BaseDT's ModelData reads it: ASCII text goes through ``unicode_escape`` first (so
    escapes written twice, ``\\u732b``, still give 猫), anything else is plain JSON."""
    text = meta.get("MODEL_INFO")
    if not isinstance(text, str):
        return None
    if all(ord(c) < 128 for c in text):
        import codecs
        try:
            value = json.loads(codecs.decode(text, "unicode_escape"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
    return _json(meta, "MODEL_INFO", dict)  # a warning when it is not a JSON object


def guess_task(outputs):
    """'detection' for (dets [N, K, 5], labels [N, K]), else 'classification'."""
    names = [o.name for o in outputs]
    if "dets" in names and "labels" in names:
        return "detection"
    if len(outputs) == 2:
        s = outputs[0].shape
        if s is not None and len(s) == 3 and s[2] == 5:
            return "detection"
    return "classification"


def build_recipe(meta, inputs, outputs, options, what="the model"):
    """The Recipe for a model: ``meta`` its metadata dict, ``inputs``/``outputs`` its NodeArgs, ``options``
    the caller's overrides (size, resize, crop, mean, std, classes, color_mode, resize_policy, task)."""
    if not inputs:
        raise ModelError("%s has no inputs to feed a picture to" % what)
    if len(inputs) != 1:
        raise InputError("%s has %d inputs (%s); tinyrt.run feeds one picture to a model with one input: use "
                         "tinyrt.InferenceSession for this one" % (what, len(inputs), ", ".join(i.name for i in inputs)))
    inp = inputs[0]
    shape = inp.shape if inp.shape is not None else None
    fixed = None
    if shape is not None and len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        fixed = (shape[2], shape[3])
    in_channels = shape[1] if shape is not None and len(shape) == 4 and isinstance(shape[1], int) else None

    task, classes, pre, source = None, None, None, ""
    if "tinyrt.preprocess" in meta:
        pre = _json(meta, "tinyrt.preprocess", dict)
        task = meta.get("tinyrt.task")
        classes = _names(_json(meta, "tinyrt.classes"), "tinyrt.classes")
        source = "tinyrt metadata"
    info = model_info(meta)
    if pre is None and isinstance(info, dict):
        codebase = str(info.get("codebase", ""))
        task = "detection" if codebase.lower().endswith("det") else "classification"
        classes = _names(info.get("classes"), "MODEL_INFO")
        pre = basedt_preprocess(info.get("modelname"), fixed, in_channels, task)
        source = "MODEL_INFO (%s %s, BaseDT/XEduHub's preprocessing)" % (codebase, info.get("modelname"))
    if pre is None and "CLASSES" in meta:
        classes = meta["CLASSES"].split("|")
        task = guess_task(outputs)
        pre = basedt_preprocess(None, fixed, in_channels, task)
        source = "CLASSES (BaseDT's default preprocessing)"
    if classes is None and isinstance(info, dict):
        classes = _names(info.get("classes"), "MODEL_INFO")

    task = options.get("task") or task or guess_task(outputs)
    if task not in ("classification", "detection"):
        raise InputError("task=%r: tinyrt.run knows 'classification' and 'detection'" % task)
    if options.get("classes") is not None:
        classes = _classes(options["classes"])
    if pre is None:
        pre = {}
        missing = [name for name in ("mean", "std") if options.get(name) is None]
        if fixed is None and options.get("size") is None and options.get("resize") is None:
            missing.insert(0, "size")
        if missing:
            # the size only when the file does not fix it (a fixed 64x64 input needs none)
            raise InputError(NEEDS_ARGUMENTS.format(
                what=what, missing=", ".join(m + "=" for m in missing),
                size="size=224, " if "size" in missing else "", size_flag="--size 224 " if "size" in missing else ""))
        source = "arguments"
        pre = {"color": "GRAY" if in_channels == 1 else "RGB", "resize": list(fixed) if fixed else None,
               "crop": None}
    else:
        if any(options.get(k) is not None for k in ("size", "resize", "crop", "mean", "std", "resize_policy")):
            source += " + arguments"

    color = str(options.get("color_mode") or pre.get("color") or "RGB").upper()
    if color in ("L", "GREY", "GRAYSCALE"):
        color = "GRAY"
    if color not in ("RGB", "GRAY"):
        raise InputError("color mode %r: RGB or GRAY" % color)
    channels = 1 if color == "GRAY" else 3
    resize_hw = _pair(pre.get("resize"), "resize")
    crop_hw = _pair(pre.get("crop"), "crop")

    size = _pair(options.get("size"), "size")
    if size is not None:
        # a new network input size: the resize follows the recipe's ratio (256 / 224 with a crop)
        if crop_hw and resize_hw:
            resize_hw = (int(round(size[0] * resize_hw[0] / float(crop_hw[0]))),
                         int(round(size[1] * resize_hw[1] / float(crop_hw[1]))))
            crop_hw = size
        else:
            resize_hw, crop_hw = size, None
    if options.get("resize") is not None:
        resize_hw = _pair(options["resize"], "resize")
    if "crop" in options and options["crop"] is not None:
        crop_hw = None if options["crop"] is False or options["crop"] == 0 else _pair(options["crop"], "crop")
    if resize_hw is None and crop_hw is None and fixed is not None:
        resize_hw = fixed
    policy = options.get("resize_policy") or pre.get("resize_policy") or "squash"
    if policy == "resize_crop":
        policy = "squash"
    if policy not in POLICIES:
        raise InputError("resize_policy=%r: one of %s" % (policy, ", ".join(POLICIES)))
    if policy == "shorter" and crop_hw is None:
        raise InputError("resize_policy='shorter' keeps the aspect ratio, so it needs a crop= to reach the "
                         "network's size")
    mean = _floats(options.get("mean") if options.get("mean") is not None else pre.get("mean"), "mean", channels)
    std = _floats(options.get("std") if options.get("std") is not None else pre.get("std"), "std", channels)
    if mean is None or std is None:
        raise InputError(NEEDS_ARGUMENTS.format(what=what, missing="mean=, std="))
    if any(s == 0 for s in std):
        raise InputError("std must not contain 0")
    final = crop_hw or resize_hw
    if fixed is not None and final is not None and tuple(final) != tuple(fixed):
        raise InputError("the pictures would be %dx%d but %s takes %dx%d (input %r %s); change size=/crop="
                         % (final[1], final[0], what, fixed[1], fixed[0], inp.name, shape))
    if in_channels is not None and in_channels != channels:
        raise InputError("%s takes %d channel(s) but the recipe makes %s pictures (%d); pass color_mode=%r"
                         % (what, in_channels, color, channels, "GRAY" if in_channels == 1 else "RGB"))
    softmax = options.get("softmax")
    if softmax is None and "tinyrt.postprocess" in meta:
        post = _json(meta, "tinyrt.postprocess", dict) or {}
        if post.get("softmax"):
            softmax = False            # already softmaxed in the graph
    # MMEdu-layout files (MODEL_INFO MMCls/MMDet, or CLASSES; every file our exporter wrote has MODEL_INFO):
    # BaseDT/XEduHub's steps, which is what their users compare with, unless the file names its pipeline
    mmedu = (isinstance(info, dict) and str(info.get("codebase", "")) in ("MMCls", "MMDet")) or "CLASSES" in meta
    pipeline = options.get("pipeline") or pre.get("pipeline") or ("basedt" if mmedu else "pillow")
    if pipeline not in PIPELINES:
        raise InputError("pipeline=%r: one of %s" % (pipeline, ", ".join(PIPELINES)))
    if pipeline == "basedt" and policy != "squash":
        raise InputError("resize_policy=%r: the basedt pipeline squashes (BaseDT's resize); use pipeline='pillow'"
                         % policy)
    return Recipe(task, classes, color, resize_hw, crop_hw, mean, std, policy, inp.name, shape,
                  [o.name for o in outputs], source, softmax, pipeline)


MAX_CLASSES_FILE_BYTES = 16 << 20  # a classes.txt of a million names is 16 MB at most


def _classes(value):
    if isinstance(value, str):
        if _is_file(value):                   # a classes.txt: one name a line (MMEdu's class_path)
            from ..files import read_regular
            raw = read_regular(value, "classes file", MAX_CLASSES_FILE_BYTES)
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise InputError("classes file %s is not UTF-8 text (one class name a line)" % value) from None
            return [line.strip() for line in text.splitlines() if line.strip()]
        sep = "\n" if "\n" in value else "|" if "|" in value else ","
        return [c.strip() for c in value.split(sep) if c.strip()]
    if isinstance(value, (list, tuple)):
        return [str(c) for c in value]
    raise InputError("classes= is a list of names, a classes.txt file or names joined by '|' or ',', not %r"
                     % (value,))


def _is_file(path):
    import os
    return os.path.isfile(path)


def basedt_preprocess(modelname, fixed, in_channels, task):
    """BaseDT's preprocessing for an MMEdu backbone name (unknown names: guessed from the input shape), for an
    input of ``fixed`` = (height, width) or the backbone's default size. The exporter writes the same into
    its files (exporter/models)."""
    entry = BACKBONES.get(str(modelname)) if modelname else None
    if entry is None:
        gray = in_channels == 1
        entry = ("resize" if task == "detection" or gray else "crop", 320 if task == "detection" else 224,
                 "GRAY" if gray else "RGB", MNIST_MEAN if gray else IMAGENET_MEAN, MNIST_STD if gray else IMAGENET_STD)
    policy, default, color, mean, std = entry
    size = fixed or (default, default)
    if policy == "crop":
        resize_hw = [int(round(size[0] * 256 / 224.0)), int(round(size[1] * 256 / 224.0))]
        crop = list(size)
    else:
        resize_hw, crop = list(size), None
    return {"color": color, "resize": resize_hw, "crop": crop, "mean": mean, "std": std, "resize_policy": "squash",
            "pipeline": "basedt"}
