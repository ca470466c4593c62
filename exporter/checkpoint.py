"""Loading checkpoints safely and mapping their key layouts onto our modules.

Accepted files (always read with ``torch.load(path, map_location="cpu", weights_only=True)``, so a file
cannot run code while it loads; numpy arrays, scalars and dtypes, which mmcv keeps in ``meta``, are let
through as the data they are, and nothing else):

* a plain ``state_dict`` (``torch.save(model.state_dict(), path)``);
* mmcv / MMEdu checkpoints ``{"meta": {"CLASSES": [...], ...}, "state_dict": {...}, "optimizer": ...}``;
  mmpretrain / mmengine's ``meta["dataset_meta"]["classes"]`` too;
* ``{"model": state_dict}`` wrappers; ``module.`` prefixes (DataParallel) are dropped.

Key layouts mapped onto ours (see models/__init__.py for ours):

* ``MobileNet``: mmcls (ours as is) and torchvision ``mobilenet_v2`` (``features.*``, ``classifier.1``).
* ``ResNet18``: torchvision (ours as is) and mmcls (``backbone.*``, ``head.fc``).
* ``MobileNetV3_*``: torchvision (ours as is).  ``LeNet``: mmcls (ours as is).
* ``SSD_Lite``: mmdet, through :func:`exporter.mmdet_keys.map_mmdet_ssdlite`.

A checkpoint that does not fit stops the export with a :class:`CheckpointError` listing the missing keys,
the unexpected keys and the keys whose shapes differ.
"""
import os
import pickle
from collections import OrderedDict

from .errors import CheckpointError

__all__ = ["CheckpointError", "load_checkpoint", "to_model_layout", "checkpoint_num_classes", "load_into",
           "torchvision_mobilenet_v2_keys"]


def load_checkpoint(path):
    """Read ``path``; return ``(state_dict, meta)`` where meta is a dict (maybe empty), tensors on the CPU."""
    import torch
    if not os.path.exists(path):
        raise CheckpointError("checkpoint %s does not exist" % path)
    _check_file(path)
    if not _looks_like_torch_file(path):
        raise CheckpointError("%s is not a PyTorch checkpoint (expected a file written by torch.save)" % path)
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            numpy_globals = _numpy_data_globals(path)   # mmcv stores numpy scores in meta.hook_msgs
            if not numpy_globals:
                raise
            with torch.serialization.safe_globals(numpy_globals):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            "checkpoint %s holds pickled Python objects (%s), not only tensors, and is not loaded because "
            "unpickling them could run code. Save only the weights: torch.save({'state_dict': "
            "model.state_dict(), 'meta': {'CLASSES': classes}}, path)" % (path, _culprit(str(e))))
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise CheckpointError("cannot read checkpoint %s as a PyTorch file: %s" % (path, _short(str(e))))
    if not isinstance(obj, dict):
        raise CheckpointError("checkpoint %s holds a %s, not a state_dict (a dict of tensors)"
                              % (path, type(obj).__name__))
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    sd = obj
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
            break
    tensors = OrderedDict()
    for k, v in sd.items():
        if isinstance(v, torch.Tensor):
            tensors[k[len("module."):] if k.startswith("module.") else k] = v
    if not tensors:
        raise CheckpointError("checkpoint %s contains no tensors (keys: %s)"
                              % (path, ", ".join(map(str, list(obj)[:10]))))
    return tensors, meta


ZIP_EXPANSION = 4            # a checkpoint's zip may hold at most 4x its size uncompressed (+ ZIP_SLACK);
ZIP_SLACK = 16 << 20         # torch.save stores tensors uncompressed: a deflated 1.6 MB file took 3.3 GB


def _check_file(path):
    """A regular file (a FIFO would block torch.load, /dev/zero never end), and no zip bomb: the sizes in
    the zip's directory are checked before torch.load decompresses anything."""
    import zipfile
    from tinyrt.files import open_regular
    f, st = open_regular(path, "checkpoint", CheckpointError)
    with f:
        if not zipfile.is_zipfile(f):
            return
        try:
            entries = zipfile.ZipFile(f).infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise CheckpointError("checkpoint %s is a broken zip archive (%s)" % (path, e)) from None
    total = sum(e.file_size for e in entries)
    if total > ZIP_EXPANSION * st.st_size + ZIP_SLACK:
        raise CheckpointError("checkpoint %s would unpack to %d MB from %d MB: not a torch.save file (torch "
                              "stores tensors uncompressed); refused as a decompression bomb"
                              % (path, total >> 20, st.st_size >> 20))


def _looks_like_torch_file(path):
    """torch.save writes a zip archive (or, before torch 1.6, a pickle stream starting with 0x80)."""
    import zipfile
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


_NUMPY_DATA = ("numpy.ndarray", "numpy.dtype", "multiarray.scalar", "multiarray._reconstruct")


def _numpy_data_globals(path):
    """The numpy classes a checkpoint needs, when those are all it needs beyond tensors, else None.

    numpy arrays, scalars and dtypes are data (no code runs to rebuild them); mmcv checkpoints keep numpy
    scores in ``meta``. Anything else stays refused.
    """
    import importlib
    import torch
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:
        return None
    objects = []
    for name in names:
        if not name.startswith("numpy.") or not (name.endswith(_NUMPY_DATA) or name.startswith("numpy.dtypes.")):
            return None
        module, _, attr = name.rpartition(".")
        try:
            objects.append(getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError):
            return None
    if objects:
        try:   # numpy >= 1.25 rebuilds a dtype through its class (numpy.dtypes.Float64DType, ...)
            import numpy.dtypes as npd
            objects += [getattr(npd, n) for n in dir(npd) if n.endswith("DType")]
        except ImportError:
            pass
    return objects or None


def _culprit(message):
    """The 'Unsupported global: GLOBAL x.Y' part of torch's weights_only error, or a short message."""
    import re
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    if found:
        return "for example %s" % found.group(1)
    found = re.search(r"WeightsUnpickler error: ([^\n]+)", message)
    return _short(found.group(1), 120) if found else "objects torch will not load safely"


def meta_classes(meta):
    """Class names stored in a checkpoint's meta (mmcv ``CLASSES``, mmengine ``dataset_meta.classes``)."""
    for holder in (meta, meta.get("dataset_meta") if isinstance(meta.get("dataset_meta"), dict) else {}):
        for key in ("CLASSES", "classes"):
            names = holder.get(key)
            if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
                return list(names)
            if isinstance(names, str) and names:
                return [n for n in names.split("|")]
    return None


def _short(text, limit=200):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------------------------------------
# layouts
# ---------------------------------------------------------------------------------------------------------

def torchvision_mobilenet_v2_keys(width_mult=1.0):
    """{torchvision mobilenet_v2 key prefix: our (mmcls) key prefix} for every conv, BN and the classifier."""
    from .models.mobilenetv2 import ARCH_SETTINGS
    table = {"features.0.0.": "backbone.conv1.conv.", "features.0.1.": "backbone.conv1.bn."}
    index = 1
    for i, (t, c, n, s) in enumerate(ARCH_SETTINGS):
        for j in range(n):
            tv, ours = "features.%d.conv." % index, "backbone.layer%d.%d.conv." % (i + 1, j)
            if t == 1:   # depthwise ConvBNReLU, then linear conv + BN as separate children
                pairs = [("0.0.", "0.conv."), ("0.1.", "0.bn."), ("1.", "1.conv."), ("2.", "1.bn.")]
            else:        # expand ConvBNReLU, depthwise ConvBNReLU, linear conv, BN
                pairs = [("0.0.", "0.conv."), ("0.1.", "0.bn."), ("1.0.", "1.conv."), ("1.1.", "1.bn."),
                         ("2.", "2.conv."), ("3.", "2.bn.")]
            for a, b in pairs:
                table[tv + a] = ours + b
            index += 1
    table["features.%d.0." % index] = "backbone.conv2.conv."
    table["features.%d.1." % index] = "backbone.conv2.bn."
    table["classifier.1."] = "head.fc."
    return table


def _rename(sd, table):
    out = OrderedDict()
    for k, v in sd.items():
        for old, new in table.items():
            if k.startswith(old):
                k = new + k[len(old):]
                break
        out[k] = v
    return out


def to_model_layout(spec, sd):
    """Return ``(state_dict in our module's names, layout name)`` for backbone ``spec``."""
    name = spec.name
    if name == "MobileNet":
        if "features.0.0.weight" in sd:
            return _rename(sd, torchvision_mobilenet_v2_keys()), "torchvision mobilenet_v2"
        return sd, "mmcls MobileNetV2"
    if name == "ResNet18":
        if "backbone.conv1.weight" in sd:
            table = OrderedDict([("head.fc.", "fc."), ("backbone.", "")])
            return _rename(sd, table), "mmcls ResNet(depth=18)"
        return sd, "torchvision resnet18"
    if name == "SSD_Lite":
        from .mmdet_keys import map_mmdet_ssdlite
        return map_mmdet_ssdlite(sd), "mmdet ssdlite_mobilenetv2"
    if name.startswith("MobileNetV3"):
        return sd, "torchvision " + name.lower()
    return sd, "mmcls " + name


# the key whose first dimension is the class count, in our layout (SSD: 6 anchors x (C + 1))
_CLASS_KEYS = {"MobileNet": "head.fc.weight", "ResNet18": "fc.weight", "MobileNetV3_Small": "classifier.3.weight",
               "MobileNetV3_Large": "classifier.3.weight", "LeNet": "backbone.classifier.2.weight",
               "SSD_Lite": "bbox_head.cls_convs.0.1.weight"}


def checkpoint_num_classes(spec, sd):
    """The number of classes the weights (already in our layout) were trained for, or None if unknown."""
    key = _CLASS_KEYS.get(spec.name)
    if key is None or key not in sd or sd[key].dim() < 1:
        return None
    rows = int(sd[key].shape[0])
    if spec.name == "SSD_Lite":
        return rows // 6 - 1 if rows % 6 == 0 else None
    return rows


def load_into(model, sd, what="checkpoint", hint=""):
    """Copy ``sd`` into ``model`` when every key and shape fits; else raise CheckpointError listing all."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [(k, list(sd[k].shape), list(own[k].shape)) for k in own
             if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append("%d missing key%s: %s" % (len(missing), "s" if len(missing) > 1 else "",
                                                   _listing(missing)))
        if unexpected:
            parts.append("%d unexpected key%s: %s" % (len(unexpected), "s" if len(unexpected) > 1 else "",
                                                      _listing(unexpected)))
        if wrong:
            parts.append("%d key%s with the wrong shape: %s" % (
                len(wrong), "s" if len(wrong) > 1 else "",
                _listing(["%s %s in the checkpoint, %s in the model" % w for w in wrong])))
        raise CheckpointError("%s does not fit the model: %s%s" % (what, "; ".join(parts), hint),
                              missing=missing, unexpected=unexpected, wrong_shape=wrong)
    import torch
    with torch.no_grad():
        fixed = OrderedDict((k, v.to(own[k].dtype)) for k, v in sd.items())
        model.load_state_dict(fixed, strict=False)
    return model


def _listing(items, limit=8):
    shown = ", ".join(items[:limit])
    return shown + (" ... and %d more" % (len(items) - limit) if len(items) > limit else "")



# ---------------------------------------------------------------------------------------------------------
# what the checkpoint says about itself
# ---------------------------------------------------------------------------------------------------------

def _config_text(meta):
    """mmcv / MMEdu keep the training config as Python text in ``meta["config"]`` (read, never run)."""
    cfg = meta.get("config")
    return cfg if isinstance(cfg, str) else ""


def _find(pattern, text):
    import re
    found = re.search(pattern, text)
    return found.group(1) if found else None


def _backbone_from_config(cfg):
    """MMEdu's backbone name for an mmcls / mmdet config's ``model = dict(...)``, or None."""
    detector = _find(r"type\s*=\s*['\"](SingleStageDetector|SSD\w*)['\"]", cfg) or "SSDHead" in cfg
    kind = _find(r"backbone\s*=\s*dict\(\s*type\s*=\s*['\"]([\w.]+)['\"]", cfg)
    if kind is None:
        return None
    kind = kind.split(".")[-1]
    if kind == "MobileNetV2":
        return "SSD_Lite" if detector else "MobileNet"
    if kind == "ResNet" and _find(r"depth\s*=\s*(\d+)", cfg) == "18":
        return "ResNet18"
    if kind == "LeNet5":
        return "LeNet"
    if kind == "MobileNetV3":
        return "MobileNetV3_Small" if _find(r"arch\s*=\s*['\"](\w+)['\"]", cfg) == "small" else "MobileNetV3_Large"
    return None


def task_of_weights(sd):
    """'detection' for SSD heads' keys, 'classification' for a classifier's, None when the keys do not say."""
    if any(k.startswith(("bbox_head.", "neck.extra_layers.")) for k in sd):
        return "detection"
    if any(k.startswith(("head.fc.", "fc.", "classifier.", "backbone.classifier.")) for k in sd):
        return "classification"
    return None


def checkpoint_settings(meta, sd=None):
    """What a checkpoint records about how it was trained: {setting: (value, where it was read)} for
    ``backbone``, ``width_mult``, ``input_size`` and ``task`` (only those found).

    Ours (exporter/train_loop.py) and MMEdu's keep ``backbone`` / ``width_mult`` / ``input_size`` in ``meta``;
    mmcls / mmdet / MMEdu runs keep their config's text in ``meta["config"]`` (``widen_factor``, the
    backbone's type, ``input_size`` / ``crop_size``). The class names are read by :func:`meta_classes`."""
    out = {}
    meta = meta or {}
    if isinstance(meta.get("backbone"), str):
        out["backbone"] = (meta["backbone"], "meta['backbone']")
    for key in ("width_mult", "widen_factor"):
        if isinstance(meta.get(key), (int, float)) and not isinstance(meta.get(key), bool):
            out["width_mult"] = (float(meta[key]), "meta[%r]" % key)
            break
    if isinstance(meta.get("input_size"), int) and not isinstance(meta.get("input_size"), bool):
        out["input_size"] = (int(meta["input_size"]), "meta['input_size']")
    cfg = _config_text(meta)
    if cfg:
        if "backbone" not in out:
            name = _backbone_from_config(cfg)
            if name:
                out["backbone"] = (name, "meta['config'] (the training config)")
        widen = _find(r"widen_factor\s*=\s*([0-9.]+)", cfg)
        if "width_mult" not in out and widen:
            out["width_mult"] = (float(widen), "meta['config'] widen_factor")
        size = _find(r"\binput_size\s*=\s*(\d+)", cfg) or _find(r"crop_size\s*=\s*(\d+)", cfg)
        if "input_size" not in out and size:
            out["input_size"] = (int(size), "meta['config'] %s" % ("input_size" if "input_size" in cfg
                                                                   else "crop_size"))
    if sd is not None:
        task = task_of_weights(sd)
        if task:
            out["task"] = (task, "its weights' keys")
    return out
