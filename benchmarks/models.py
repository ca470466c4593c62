"""The benchmark models: exported once (random weights unless said) and kept in a cache folder.

    MobileNetV2-224              MobileNetV2-1.0 at 224 (MMEdu "MobileNet"), by tinyrt's exporter
    MobileNetV3-Large-224        by the exporter
    SSD-Lite-320                 SSD-Lite-MobileNetV2 at 320 with its post-processing graph (softmax, top-k,
                                 box decoding, NonMaxSuppression), by the exporter
    demo-classifier              the demo's trained models (exporter/pretrained/, ``make demo``):
    demo-detector                MobileNetV2 w0.35 at 96 (56 nodes), SSD-Lite w0.35 at 160 (337 nodes)
    MobileNetV2-0.35-160         small models people put on a board, by the exporter (torchvision's
    MobileNetV3-Small-224        layouts)
    ShuffleNetV2-0.5-224         benchmarks/torch_defs.py, exported by torch (channel shuffles)
    SSDlite320                   torchvision's ssdlite320_mobilenet_v3_large rebuilt in benchmarks/
                                 torch_defs.py: thousands of small post-processing nodes, NMS in an If
    chain-1000                   1000 Relu/Neg/Abs/Sigmoid nodes on [1, 64]: the executor's cost a node

The folder is $TINYRT_BENCH_MODELS, else <cache dir>/tinyrt/bench-models. If the exporter cannot
convert a model, MobileNetV2 falls back to tests/torch_models.py's copy.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (source, input size, classes, width): an exporter backbone, "demo:<kind>", "torch:<name>" or "chain"
MODELS = {
    "MobileNetV2-224": ("MobileNet", 224, 1000, 1.0),
    "MobileNetV3-Large-224": ("MobileNetV3_Large", 224, 1000, 1.0),
    "SSD-Lite-320": ("SSD_Lite", 320, 80, 1.0),
    "demo-classifier": ("demo:classifier", 96, 4, 0.35),
    "demo-detector": ("demo:detector", 160, 4, 0.35),
    "MobileNetV2-0.35-160": ("MobileNet", 160, 1000, 0.35),
    "MobileNetV3-Small-224": ("MobileNetV3_Small", 224, 1000, 1.0),
    "ShuffleNetV2-0.5-224": ("torch:shufflenet_v2_x0_5", 224, 1000, 0.5),
    "SSDlite320": ("torch:ssdlite320", 320, 91, 1.0),
    "chain-1000": ("chain", 64, 0, 1.0),
}
CHAIN_OPS = ("Relu", "Neg", "Abs", "Sigmoid")


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
    backbone, size, classes, width = MODELS[name]
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    log("exporting %s (once; kept in %s)" % (name, folder()))
    if backbone == "chain":
        return _chain(path, size)
    if backbone.startswith("demo:"):
        return _demo(name, backbone[5:], path)
    if backbone.startswith("torch:"):
        import torch
        from . import torch_defs
        torch.manual_seed(0)
        model = torch_defs.shufflenet_v2_x0_5(classes) if backbone == "torch:shufflenet_v2_x0_5" \
            else torch_defs.SSDlite320(classes, size)
        torch_defs.export(model, path, size)
        return path
    try:
        import exporter
        exporter.convert(backbone, out_file=path, num_classes=classes, input_size=size, width_mult=width, seed=0,
                         log=None, verify_runtimes=())
    except Exception as e:  # the exporter is young: fall back for MobileNetV2
        if backbone != "MobileNet":
            raise
        log("exporter failed (%s: %s); using tests/torch_models.py's MobileNetV2" % (type(e).__name__, e))
        from tests import torch_models
        model = torch_models.MobileNetV2(num_classes=classes, width_mult=1.0)
        torch_models.export(model, path, opset=11, input_shape=(1, 3, size, size))
    return path


def _demo(name, kind, path):
    """The demo's committed, trained checkpoint, converted as ``make demo`` does (without its checks)."""
    import shutil
    import tempfile
    from exporter.demo import convert_pretrained
    with tempfile.TemporaryDirectory() as tmp:
        result = convert_pretrained(tmp, log=lambda m: None, which=[kind])[kind]
        shutil.copyfile(result.onnx_path, path)
    return path


def _chain(path, width):
    """1000 cheap element-wise nodes in a row on [1, width]: what the executor costs a node."""
    import onnx
    from onnx import TensorProto, helper
    names = ["input"] + ["t%d" % i for i in range(1, 1000)] + ["output"]
    nodes = [helper.make_node(CHAIN_OPS[i % len(CHAIN_OPS)], [names[i]], [names[i + 1]]) for i in range(1000)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, width])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, width])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def input_for(name):
    import numpy as np
    source, size = MODELS[name][:2]
    if source == "chain":
        return np.random.RandomState(0).randn(1, size).astype(np.float32)
    # an image after the usual (x - mean) / std normalisation spans about -2..2
    return ((np.random.RandomState(0).rand(1, 3, size, size) - 0.5) * 4).astype(np.float32)
