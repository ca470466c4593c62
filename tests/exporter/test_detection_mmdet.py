"""mmdet SSD-Lite checkpoints: the key layout, loading, and refusing what does not fit.

The mmdet layout is enumerated here from mmdet's ``ssdlite_mobilenetv2_scratch_600e_coco.py`` and its modules
(MobileNetV2 arch settings, InvertedResidual, ConvModule ``conv``/``bn``, SSDNeck with
DepthwiseSeparableConvModule, SSDHead with use_depthwise=True), independently of exporter/models/ssdlite.py:

* at width 1.0 with 80 classes it must equal our module's state_dict keys and shapes, in order;
* a checkpoint built in that layout with random values (``{'meta': {'CLASSES': ...}, 'state_dict': ...}``,
  saved and read back with ``torch.load(weights_only=True)``) loads through ``map_mmdet_ssdlite`` and gives
  the same outputs as the same weights put into the module directly, in torch and after export in
  onnxruntime and tinyrt;
* a missing, renamed or wrongly shaped key fails with CheckpointError naming the key.
"""
import importlib.util
import os
from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")

from exporter.detection import DetectionExport  # noqa: E402
from exporter.errors import CheckpointError  # noqa: E402
from exporter.mmdet_keys import map_mmdet_ssdlite  # noqa: E402
from exporter.models.ssdlite import SSDLite  # noqa: E402

_spec = importlib.util.spec_from_file_location("_test_detection_helpers",
                                               os.path.join(os.path.dirname(__file__), "test_detection.py"))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


def _divisible(value, divisor=8):
    """mmdet.models.utils.make_divisible with its defaults (min_value = divisor, min_ratio 0.9)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def mmdet_ssdlite_layout(num_classes, widen=1.0):
    """{key: shape} of mmdet's SSD-Lite MobileNetV2 detector, in state_dict order."""
    keys = OrderedDict()

    def bn(prefix, c):
        for name in ("weight", "bias", "running_mean", "running_var"):
            keys["%s.%s" % (prefix, name)] = (c,)
        keys[prefix + ".num_batches_tracked"] = ()

    def conv_module(prefix, cin, cout, k, groups=1):  # mmcv ConvModule: conv (no bias: a norm follows), bn
        keys[prefix + ".conv.weight"] = (cout, cin // groups, k, k)
        bn(prefix + ".bn", cout)

    arch = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
            [6, 320, 1, 1]]
    cin = _divisible(32 * widen)
    conv_module("backbone.conv1", 3, cin, 3)
    outs = []
    for i, (t, c, n, _s) in enumerate(arch):
        cout = _divisible(c * widen)
        for j in range(n):
            mid = int(round(cin * t))
            p = "backbone.layer%d.%d" % (i + 1, j)
            if t != 1:
                conv_module(p + ".expand_conv", cin, mid, 1)
            conv_module(p + ".depthwise_conv", mid, mid, 3, groups=mid)
            conv_module(p + ".linear_conv", mid, cout, 1)
            cin = cout
        if i == 4:
            outs.append(cout)  # out_indices (4, 7): layer5 and conv2
    last = int(1280 * widen) if widen > 1 else 1280
    conv_module("backbone.conv2", cin, last, 1)
    outs.append(last)
    # neck: in_channels (96, 1280), out_channels (96, 1280, 512, 256, 256, 128) at width 1
    extra = [512, 256, 256, 128] if widen == 1.0 else [_divisible(c * widen) for c in (512, 256, 256, 128)]
    prev = outs[-1]
    for i, oc in enumerate(extra):
        p = "neck.extra_layers.%d" % i
        conv_module(p + ".0", prev, oc // 2, 1)
        conv_module(p + ".1.depthwise_conv", oc // 2, oc // 2, 3, groups=oc // 2)
        conv_module(p + ".1.pointwise_conv", oc // 2, oc, 1)
        prev = oc
    head_in = outs + extra
    for branch, per_anchor in (("cls", num_classes + 1), ("reg", 4)):
        for i, c in enumerate(head_in):
            p = "bbox_head.%s_convs.%d" % (branch, i)
            conv_module(p + ".0", c, c, 3, groups=c)
            keys[p + ".1.weight"] = (6 * per_anchor, c, 1, 1)
            keys[p + ".1.bias"] = (6 * per_anchor,)
    return keys


def test_layout_is_mmdets_at_full_width():
    ours = OrderedDict((k, tuple(v.shape)) for k, v in SSDLite(80).state_dict().items())
    theirs = mmdet_ssdlite_layout(80)
    assert list(ours) == list(theirs)
    assert ours == theirs
    assert ours["backbone.layer5.2.linear_conv.conv.weight"] == (96, 576, 1, 1)
    assert ours["bbox_head.cls_convs.0.1.weight"] == (6 * 81, 96, 1, 1)
    assert ours["bbox_head.cls_convs.1.0.conv.weight"] == (1280, 1, 3, 3)
    # the module's BatchNorms use mmdet's eps
    assert SSDLite(2).backbone.conv1.bn.eps == 1e-3


@pytest.mark.parametrize("widen", [0.25, 0.5, 1.4])
def test_layout_at_other_widths(widen):
    ours = OrderedDict((k, tuple(v.shape)) for k, v in SSDLite(3, width_mult=widen).state_dict().items())
    assert ours == mmdet_ssdlite_layout(3, widen)


# ------------------------------------------------------------------------------------------ checkpoints


@pytest.fixture(scope="module")
def reference():
    """A well-conditioned random model (the weights "put in directly") and the same weights in mmdet's layout."""
    model = helpers.randomize_(SSDLite(3, width_mult=0.25, input_size=160), seed=11, input_size=(160, 160),
                               bg_bias=8.0)
    layout = mmdet_ssdlite_layout(3, 0.25)
    params = dict(model.state_dict())
    # mmdet's names are enumerated above, not taken from the module; assign by those names
    sd = OrderedDict()
    for key, shape in layout.items():
        sd[key] = params[key].clone()
        assert tuple(sd[key].shape) == shape
    return model, sd


def _save_and_load(tmp_path, sd, classes=("cat", "dog", "猫")):
    path = str(tmp_path / "ssdlite.pth")
    torch.save({"meta": {"CLASSES": list(classes), "mmdet_version": "2.25.0"}, "state_dict": sd}, path)
    return torch.load(path, map_location="cpu", weights_only=True)


def test_mmdet_checkpoint_loads_and_matches(reference, tmp_path):
    direct, sd = reference
    ck = _save_and_load(tmp_path, sd)
    assert ck["meta"]["CLASSES"] == ["cat", "dog", "猫"]
    model = SSDLite(3, width_mult=0.25, input_size=160)
    model.load_state_dict(map_mmdet_ssdlite(ck["state_dict"], model))
    model.eval()
    x = helpers.make_input(1, (160, 160), seed=2)
    with torch.no_grad():
        a = DetectionExport(model, nms_pre=300).eval()(x)
        b = DetectionExport(direct, nms_pre=300).eval()(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert int((a[0][0, :, 4] > 0).sum()) > 0
    # export the loaded model; onnxruntime and tinyrt must give the directly built model's detections
    loaded = DetectionExport(model, nms_pre=300).eval()
    mb = helpers.export_bytes(loaded, x, 13)
    ref, got_ort, got_trt = helpers.run_all(mb, DetectionExport(direct, nms_pre=300).eval(), x)
    helpers.assert_same_detections(ref, got_ort, "onnxruntime")
    helpers.assert_same_detections(ref, got_trt, "tinyrt")


def test_prefixes_are_handled(reference):
    _, sd = reference
    wrapped = OrderedDict(("module." + k, v) for k, v in sd.items())
    wrapped["data_preprocessor.mean"] = torch.zeros(3, 1, 1)  # mmdet 3.x keeps its normalisation here
    model = SSDLite(3, width_mult=0.25, input_size=160)
    mapped = map_mmdet_ssdlite(wrapped, model)
    assert list(mapped) == list(sd)
    # num_batches_tracked does not change the outputs: a checkpoint without them still loads
    slim = OrderedDict((k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    map_mmdet_ssdlite(slim, model)


def _fails(sd):
    model = SSDLite(3, width_mult=0.25, input_size=160)
    with pytest.raises(CheckpointError) as info:
        map_mmdet_ssdlite(sd, model)
    return info.value


def test_missing_key_is_named(reference):
    _, sd = reference
    sd = OrderedDict(sd)
    del sd["neck.extra_layers.2.1.pointwise_conv.bn.running_var"]
    err = _fails(sd)
    assert err.missing == ["neck.extra_layers.2.1.pointwise_conv.bn.running_var"]
    assert not err.unexpected and not err.wrong_shape
    assert "neck.extra_layers.2.1.pointwise_conv.bn.running_var" in str(err)


def test_renamed_key_is_named(reference):
    _, sd = reference
    sd = OrderedDict((k.replace("layer3.1.expand_conv", "layer3.1.expand"), v) for k, v in sd.items())
    err = _fails(sd)
    assert "backbone.layer3.1.expand_conv.conv.weight" in err.missing
    assert "backbone.layer3.1.expand.conv.weight" in err.unexpected
    assert "backbone.layer3.1.expand_conv.conv.weight" in str(err)
    assert "backbone.layer3.1.expand.conv.weight" in str(err)


def test_wrongly_shaped_key_is_named(reference):
    _, sd = reference
    sd = OrderedDict(sd)
    sd["bbox_head.reg_convs.4.1.weight"] = torch.zeros(20, 8, 1, 1)
    err = _fails(sd)
    assert [w[0] for w in err.wrong_shape] == ["bbox_head.reg_convs.4.1.weight"]
    assert "bbox_head.reg_convs.4.1.weight" in str(err)


def test_class_count_mismatch_says_so(reference):
    _, sd = reference
    model = SSDLite(5, width_mult=0.25, input_size=160)
    with pytest.raises(CheckpointError) as info:
        map_mmdet_ssdlite(sd, model)
    assert "trained for 3 classes, the model has 5" in str(info.value)
    assert "bbox_head.cls_convs.0.1.weight" in [w[0] for w in info.value.wrong_shape]


def test_not_an_mmdet_detector():
    sd = OrderedDict([("features.0.0.weight", torch.zeros(32, 3, 3, 3)), ("classifier.1.weight", torch.zeros(2, 8))])
    with pytest.raises(CheckpointError, match="mmdet"):
        map_mmdet_ssdlite(sd)
