"""mmdet's SSD-Lite MobileNetV2 checkpoint keys -> :class:`exporter.models.ssdlite.SSDLite` keys.

Our module is laid out exactly like mmdet's ``SingleStageDetector`` for ``ssdlite_mobilenetv2`` (see
exporter/models/ssdlite.py), so the names are the same one for one::

    backbone.conv1.{conv,bn}.*                                   stem 3x3 s2
    backbone.layer{1..7}.{j}.{expand_conv,depthwise_conv,linear_conv}.{conv,bn}.*
                                                                 (layer1 has no expand_conv)
    backbone.conv2.{conv,bn}.*                                   1x1 to 1280
    neck.extra_layers.{0..3}.0.{conv,bn}.*                       1x1 to out/2
    neck.extra_layers.{0..3}.1.{depthwise_conv,pointwise_conv}.{conv,bn}.*
    bbox_head.{cls,reg}_convs.{0..5}.0.{conv,bn}.*               depthwise 3x3
    bbox_head.{cls,reg}_convs.{0..5}.1.{weight,bias}             1x1 to 6*(C+1) / 6*4

(``bn.*`` = weight, bias, running_mean, running_var, num_batches_tracked.) What the mapping does:

* strips a ``module.`` prefix (a model saved from inside DataParallel / DistributedDataParallel);
* drops mmdet 3.x's ``data_preprocessor.*`` buffers (mean/std: they are in our metadata, not the graph);
* with ``model`` given, checks every key and shape against it and raises
  :class:`~exporter.errors.CheckpointError` listing the missing, unexpected and wrongly shaped keys
  (``num_batches_tracked`` may be absent: it does not change the outputs).

Without ``model`` the keys are checked only for looking like mmdet's detector at all (backbone/neck/
bbox_head); the caller checks them against the module (exporter/checkpoint.py ``load_into``).
"""
from collections import OrderedDict

__all__ = ["map_mmdet_ssdlite", "check_against"]

_PARTS = ("backbone.", "neck.", "bbox_head.")
_DROPPED = ("data_preprocessor.",)


def _errors():
    from .errors import CheckpointError
    return CheckpointError


def map_mmdet_ssdlite(state_dict, model=None):
    """Return ``state_dict`` (mmdet SSD-Lite layout) in :class:`SSDLite`'s key names.

    Raises CheckpointError when the keys are not an mmdet detector's, or (with ``model``) do not fit it."""
    out = OrderedDict()
    for key, value in state_dict.items():
        k = key[len("module."):] if key.startswith("module.") else key
        if k.startswith(_DROPPED):
            continue
        out[k] = value
    if not any(k.startswith(_PARTS) for k in out):
        keys = list(out)
        raise _errors()(
            "the checkpoint is not in mmdet's SSD-Lite layout: no key starts with backbone., neck. or bbox_head. "
            "(first keys: %s)" % ", ".join(keys[:5]), unexpected=keys)
    if model is not None:
        check_against(model, out)
    return out


def check_against(model, sd, what="the mmdet SSD-Lite checkpoint"):
    """Raise CheckpointError unless ``sd`` has exactly ``model``'s keys with the same shapes."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [(k, list(sd[k].shape), list(own[k].shape)) for k in own
             if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append("missing keys: " + _listing(missing))
    if unexpected:
        parts.append("unexpected keys: " + _listing(unexpected))
    if wrong:
        parts.append("keys with the wrong shape: " + _listing(
            ["%s %s in the checkpoint, %s in the model" % w for w in wrong]))
    hint = ""
    cls_key = "bbox_head.cls_convs.0.1.weight"
    if cls_key in sd and cls_key in own and sd[cls_key].shape[0] != own[cls_key].shape[0] \
            and sd[cls_key].shape[0] % 6 == 0:
        hint = " (the checkpoint was trained for %d classes, the model has %d)" % (
            sd[cls_key].shape[0] // 6 - 1, own[cls_key].shape[0] // 6 - 1)
    raise _errors()("%s does not fit the model: %s%s" % (what, "; ".join(parts), hint),
                    missing=missing, unexpected=unexpected, wrong_shape=wrong)


def _listing(items, limit=8):
    shown = ", ".join(items[:limit])
    return shown + (" ... and %d more" % (len(items) - limit) if len(items) > limit else "")
