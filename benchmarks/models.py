"""The benchmark models: exported once by tinyrt's exporter (random weights) and kept in a cache folder.

    MobileNetV2-1.0 at 224 (MMEdu "MobileNet"), MobileNetV3-Large at 224, SSD-Lite-MobileNetV2 at 320
    (with its post-processing graph: softmax, top-k, box decoding, NonMaxSuppression).

The folder is $TINYRT_BENCH_MODELS, else <cache dir>/tinyrt/bench-models. If the exporter cannot
convert a model, MobileNetV2 falls back to tests/torch_models.py's copy.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (exporter backbone, input size, classes)
MODELS = {
    "MobileNetV2-224": ("MobileNet", 224, 1000),
    "MobileNetV3-Large-224": ("MobileNetV3_Large", 224, 1000),
    "SSD-Lite-320": ("SSD_Lite", 320, 80),
}


def folder():
    path = os.environ.get("TINYRT_BENCH_MODELS")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "tinyrt", "bench-models")
    os.makedirs(path, exist_ok=True)
    return path


def path_of(name):
    return os.path.join(folder(), name + ".onnx")


def ensure(name, log=print):
    """The path of model ``name``, exporting it first when it is not there yet."""
    path = path_of(name)
    if os.path.exists(path):
        return path
    backbone, size, classes = MODELS[name]
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    log("exporting %s (once; kept in %s)" % (name, folder()))
    try:
        import exporter
        exporter.convert(backbone, out_file=path, num_classes=classes, input_size=size, seed=0, log=None,
                         verify_runtimes=())
    except Exception as e:  # the exporter is young: fall back for MobileNetV2
        if backbone != "MobileNet":
            raise
        log("exporter failed (%s: %s); using tests/torch_models.py's MobileNetV2" % (type(e).__name__, e))
        from tests import torch_models
        model = torch_models.MobileNetV2(num_classes=classes, width_mult=1.0)
        torch_models.export(model, path, opset=11, input_shape=(1, 3, size, size))
    return path


def input_for(name):
    import numpy as np
    size = MODELS[name][1]
    # an image after the usual (x - mean) / std normalisation spans about -2..2
    return ((np.random.RandomState(0).rand(1, 3, size, size) - 0.5) * 4).astype(np.float32)
