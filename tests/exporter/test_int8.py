"""The exporter's int8 option: a QDQ model calibrated on the user's pictures, verified in onnxruntime and
tinyrt, with the top-1 change on the labelled pictures reported; refused clearly without pictures."""
import os

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime.quantization")
onnx = pytest.importorskip("onnx")

from exporter import convert  # noqa: E402
from exporter.data import make_classification_dataset  # noqa: E402
from exporter.errors import ExporterError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CKPT = os.path.join(ROOT, "exporter", "pretrained", "shapes_cls.pth")
ARGS = dict(checkpoint=CKPT, width_mult=0.35, input_size=96, log=None)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("int8") / "shapes")
    make_classification_dataset(path, seed=3, train=0, val=48, test=0, size=96)
    return path


@pytest.mark.slow
def test_int8_convert_reports_accuracy_change(dataset, tmp_path):
    import tinyrt
    out = str(tmp_path / "cls_int8.onnx")
    result = convert("MobileNet", out_file=out, quantize="int8", calibration=dataset, **ARGS)
    q = result.report.int8
    assert q["pictures"] == 48 and q["split"] == "val" and q["metric"] == "top-1" and q["count"] == 48
    assert q["float"] >= 0.9 and q["int8"] >= q["float"] - 0.1, q     # the committed model is a good one
    model = onnx.load(out)
    ops = {n.op_type for n in model.graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert any(p.key == "tinyrt.classes" for p in model.metadata_props)   # tinyrt.run still reads it
    result = tinyrt.run(out, os.path.join(ROOT, "exporter", "pretrained", "samples", "cls_star.jpg"))
    assert result[0]["name"] == "star"
    assert q["verified"] == 8 and q["max_diff"] <= 1.0 / 255 + 1e-6  # one uint8 step of the softmax output


@pytest.mark.parametrize("calibration", [None, "missing", "empty"])
def test_int8_without_pictures_is_refused_before_writing(calibration, tmp_path):
    if calibration == "empty":
        calibration = str(tmp_path / "empty")
        os.makedirs(calibration)
    elif calibration == "missing":
        calibration = str(tmp_path / "no_such_folder")
    out = tmp_path / "out" / "m.onnx"
    with pytest.raises(ExporterError, match="calibrat"):
        convert("MobileNet", out_file=str(out), quantize="int8", calibration=calibration, **ARGS)
    assert not out.exists() and not (tmp_path / "out" / "m.py").exists()


def test_unknown_quantization_is_refused(tmp_path):
    with pytest.raises(ExporterError, match="int8"):
        convert("MobileNet", out_file=str(tmp_path / "m.onnx"), quantize="int4", calibration=str(tmp_path), **ARGS)
