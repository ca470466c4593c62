"""The board models and their goldens (x86 only: needs torch, onnx and onnxruntime).

    python tests/boards/make_models.py              # rebuild the goldens from the stored models (onnxruntime)
    python tests/boards/make_models.py --models     # re-export the models too, then the goldens
    python tests/boards/make_models.py --golden-for other.onnx [--out other.npz] [--batch 2]
                                                    # a golden for any model (to check it on a board)
    python tests/boards/make_models.py --warmup     # tinyrt/data/warmup.onnx (see build_warmup)

The models (``models/``, committed; small, seeded random weights with calibrated BatchNorm):

==========================  ==========================================================================
``mobilenetv2_op11.onnx``   MobileNetV2 width 0.35, input 96, 10 classes, opset 11, dynamic batch
``mobilenetv2_op13.onnx``   the same network at opset 13 (fed batch 2 on the board, like op11)
``ssdlite_op11.onnx``       SSD-Lite MobileNetV2 width 0.2 , input 320, 3 classes, NMS in the graph,
                            outputs ``dets`` [1, 200, 5] and ``labels`` [1, 200], opset 11
``mmedu_mobilenet.onnx``    MMEdu's layout: input ``input`` [1, 3, 224, 224], output ``probs`` (softmaxed),
                            ``MODEL_INFO`` metadata, opset 11, initializers also listed as graph inputs
==========================  ==========================================================================

Each golden (``goldens/<model>.npz``) holds the model's sha256, the feed (name, shape and the seed of
``numpy.random.RandomState(seed).standard_normal(shape)``, which gives the same numbers on every numpy since
1.x and every platform, so the feed is rebuilt on the board, not stored) and onnxruntime's outputs on x86.
``test_board_goldens.py`` checks that every golden is current (same sha256, same onnxruntime outputs).

The classifier and the detector are made by the project's exporter the way a user makes them: seeded
weights (``tests/torch_models.randomize``: calibrated BatchNorm; for the detector a background bias, see
``build_ssdlite``) saved as an mmcls/mmdet-style checkpoint, then ``exporter.convert`` (which also writes
the metadata and verifies torch == onnxruntime == tinyrt). The MMEdu-layout file is exported here with
``torch.onnx.export`` exactly as MMEdu's own ``convert`` does (``keep_initializers_as_inputs=True``,
opset 11, softmax appended, ``MODEL_INFO``): it stands for files our users bring from MMEdu, which our
exporter, on purpose, does not imitate.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(HERE, "models")
GOLDENS = os.path.join(HERE, "goldens")
IMAGES = os.path.join(HERE, "images")

# name -> (feed name, feed shape, seed); the shapes are what the board feeds (batch 2 for the dynamic batch)
FEEDS = {
    "mobilenetv2_op11.onnx": ("input", (2, 3, 96, 96), 11),
    "mobilenetv2_op13.onnx": ("input", (2, 3, 96, 96), 13),
    "ssdlite_op11.onnx": ("input", (1, 3, 320, 320), 4),  # a feed far from ties: see stability()
    "mmedu_mobilenet.onnx": ("input", (1, 3, 224, 224), 7),
}
MMEDU_CLASSES = ["cat", "dog", "bird", "fish", "horse"]
MNV2_CLASSES = ["class%d" % i for i in range(10)]
SSD_CLASSES = ["person", "bicycle", "car"]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_feed(shape, seed):
    """The seeded feed; the board script builds the same one (RandomState's stream is frozen across numpy)."""
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------------------------------------- models

def _torch():
    sys.path.insert(0, REPO)
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import torch
    import torch_models
    torch.manual_seed(0)
    return torch, torch_models


def _export(torch, module, path, shape, opset, output_names, dynamic_batch=False, initializers_as_inputs=False):
    x = torch.randn(*shape)
    kwargs = dict(input_names=["input"], output_names=list(output_names), opset_version=opset,
                  do_constant_folding=True, keep_initializers_as_inputs=initializers_as_inputs, dynamo=False)
    if dynamic_batch:
        kwargs["dynamic_axes"] = {name: {0: "batch"} for name in ["input"] + list(output_names)}
    with torch.no_grad():
        torch.onnx.export(module.eval(), (x,), path, **kwargs)


def _set_metadata(path, props):
    import onnx
    m = onnx.load(path)
    for key, value in props.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(m, path)


def _convert(torch, backbone, net, classes, path, **kwargs):
    """Export ``net`` with the project's exporter, as a user would: checkpoint in, ONNX file out.

    The seeded weights go into an mmcls/mmdet-style checkpoint (``{'meta': {'CLASSES': ...}, 'state_dict':
    ...}``) in a temporary folder; ``exporter.convert`` loads it, exports, writes the metadata and verifies
    torch == onnxruntime == tinyrt. Only the .onnx file is kept (not the sample script)."""
    import shutil
    import tempfile
    from exporter.convert import convert
    folder = tempfile.mkdtemp(prefix="board-models-")
    try:
        ckpt = os.path.join(folder, "weights.pth")
        torch.save({"meta": {"CLASSES": list(classes)}, "state_dict": net.state_dict()}, ckpt)
        out = os.path.join(folder, os.path.basename(path))
        convert(backbone, checkpoint=ckpt, out_file=out, log=None, **kwargs)
        shutil.copy(out, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return path


def build_mobilenetv2(torch, tm, opset):
    from exporter.models.mobilenetv2 import MobileNetV2
    torch.manual_seed(1)
    net = tm.randomize(MobileNetV2(num_classes=len(MNV2_CLASSES), width_mult=0.35), seed=1,
                       input_shape=(4, 3, 96, 96))
    path = os.path.join(MODELS, "mobilenetv2_op%d.onnx" % opset)
    return _convert(torch, "MobileNet", net, MNV2_CLASSES, path, width_mult=0.35, input_size=96, opset=opset,
                    dynamic_batch=True)


def build_mmedu(torch, tm):
    """A file laid out as MMEdu's ``convert`` writes a classifier (mmcls pytorch2onnx + softmax)."""
    from exporter.models.mobilenetv2 import MobileNetV2

    class Softmaxed(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return torch.softmax(self.net(x), dim=1)

    torch.manual_seed(2)
    net = tm.randomize(MobileNetV2(num_classes=len(MMEDU_CLASSES), width_mult=0.35), seed=2,
                       input_shape=(4, 3, 224, 224))
    path = os.path.join(MODELS, "mmedu_mobilenet.onnx")
    _export(torch, Softmaxed(net), path, (1, 3, 224, 224), 11, ["probs"], initializers_as_inputs=True)
    info = {"codebase": "MMCls", "modelname": "MobileNet", "classes": MMEDU_CLASSES}
    _set_metadata(path, {"MODEL_INFO": json.dumps(info)})
    return path


def build_ssdlite(torch, tm):
    """SSD-Lite with the post-processing (decode, TopK, NonMaxSuppression) in the graph, MMEdu's layout.

    Random weights would put every anchor above the 0.02 score threshold; like a trained detector, the
    background logit gets a bias of +6.5 so that a few dozen boxes pass the threshold and NMS keeps 17 of
    them for the golden's feed, instead of 200 near-identical scores whose order a rounding could swap.
    """
    from exporter.models.ssdlite import SSDLite
    torch.manual_seed(3)
    net = tm.randomize(SSDLite(num_classes=len(SSD_CLASSES), width_mult=0.2, input_size=320), seed=3,
                       input_shape=(2, 3, 320, 320))
    c1 = len(SSD_CLASSES) + 1
    with torch.no_grad():
        for conv in net.bbox_head.cls_convs:
            bias = conv[1].bias.view(-1, c1)   # [anchors, C + 1], background last
            bias[:, -1] += 6.5
    path = os.path.join(MODELS, "ssdlite_op11.onnx")
    return _convert(torch, "SSD_Lite", net, SSD_CLASSES, path, width_mult=0.2, input_size=320, opset=11)


def build_models():
    torch, tm = _torch()
    os.makedirs(MODELS, exist_ok=True)
    paths = [build_mobilenetv2(torch, tm, 11), build_mobilenetv2(torch, tm, 13), build_ssdlite(torch, tm),
             build_mmedu(torch, tm)]
    for p in paths:
        print("%-28s %7.0f kB" % (os.path.basename(p), os.path.getsize(p) / 1e3))
    return paths


# ------------------------------------------------------------------------------------------------ goldens

def ort_outputs(model_path, feed_name, feed):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3  # not the warning for every initializer listed as an input (MMEdu's layout)
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return names, sess.run(names, {feed_name: feed})


def golden(model_path, feed_name, shape, seed):
    """The golden's arrays for one model (a dict for np.savez)."""
    import onnxruntime as ort
    names, outs = ort_outputs(model_path, feed_name, make_feed(shape, seed))
    g = {"sha256": np.array(sha256(model_path)), "model": np.array(os.path.basename(model_path)),
         "feed_name": np.array(feed_name), "feed_shape": np.array(shape, dtype=np.int64),
         "feed_seed": np.array(seed, dtype=np.int64), "output_names": np.array(names),
         "onnxruntime": np.array(ort.__version__)}
    for i, out in enumerate(outs):
        g["output_%d" % i] = out
    return g


def golden_path(model_name):
    return os.path.join(GOLDENS, os.path.splitext(model_name)[0] + ".npz")


def write_goldens():
    os.makedirs(GOLDENS, exist_ok=True)
    for name, (feed_name, shape, seed) in sorted(FEEDS.items()):
        g = golden(os.path.join(MODELS, name), feed_name, shape, seed)
        np.savez_compressed(golden_path(name), **g)
        print("%-28s -> goldens/%s" % (name, os.path.basename(golden_path(name))))
    for name in sorted(FEEDS):
        check_stability(os.path.join(MODELS, name))
    dets = np.load(golden_path("ssdlite_op11.onnx"))["output_0"]
    print("ssdlite_op11.onnx: %d detections in the golden" % int((dets[0, :, 4] > 0).sum()))


def stability(model_path, trials=6, noise=1e-5):
    """How much the golden moves when the feed moves by ``noise`` (x its std): a golden must sit far from any
    tie (two detections of nearly the same score, an IoU at the NMS threshold, two classes of nearly the same
    probability), or another platform's rounding could swap rows and fail the board test for no real bug.
    Returns (largest relative change of float outputs, whether any integer output changed)."""
    feed_name, shape, seed = FEEDS[os.path.basename(model_path)]
    x = make_feed(shape, seed)
    names, base = ort_outputs(model_path, feed_name, x)
    worst, flipped = 0.0, False
    for t in range(trials):
        xp = x + noise * np.random.RandomState(100 + t).standard_normal(shape).astype(np.float32)
        for b, p in zip(base, ort_outputs(model_path, feed_name, xp)[1]):
            if b.dtype.kind == "f":
                worst = max(worst, float(np.abs(p - b).max() / max(1.0, float(np.abs(b).max()))))
            else:
                flipped = flipped or bool((p != b).any())
    return worst, flipped


def check_stability(model_path):
    worst, flipped = stability(model_path)
    line = "%s: feed noise 1e-5 moves the outputs by %.1e (relative)%s" % (
        os.path.basename(model_path), worst, ", and changes integer outputs" if flipped else "")
    print(line)
    if flipped or worst > 5e-3:
        raise SystemExit("unstable golden (%s): choose another feed seed in FEEDS" % line)


def write_image():
    """A small synthetic JPEG (gradients and shapes) for the board's Pillow check."""
    from PIL import Image, ImageDraw
    os.makedirs(IMAGES, exist_ok=True)
    y, x = np.mgrid[0:180, 0:240]
    rgb = np.stack([x * 255 // 239, y * 255 // 179, (x + y) * 255 // 418], -1).astype(np.uint8)
    im = Image.fromarray(rgb)
    d = ImageDraw.Draw(im)
    d.ellipse((40, 30, 130, 120), fill=(230, 40, 40))
    d.rectangle((140, 80, 220, 160), fill=(30, 30, 200))
    path = os.path.join(IMAGES, "shapes.jpg")
    im.save(path, quality=90)
    return path


WARMUP = os.path.join(REPO, "tinyrt", "data", "warmup.onnx")


def build_warmup(path=WARMUP):
    """A tiny model (a few KB) with one node for every numba kernel, run by ``tinyrt warmup`` (no MODEL) to
    compile them all ahead of time: the stem conv on the NCHW input (kernels/stem.py; a 7x7 one beside it,
    too many taps for that kernel: im2col_nchw), depthwise, pointwise,
    a 3x3 conv over 16+ channels (im2col), MaxPool, AveragePool, squeeze-excite (GlobalAveragePool, a
    1x1 conv with Sigmoid, Mul), a classifier (Gemm, Softmax), a Gemm of int8 weights (DequantizeLinear: a QDQ
    model's classifier, kernels/qgemm.py), a large Add, a QuantizeLinear/DequantizeLinear pair (a QDQ model's
    activation rounding) and NonMaxSuppression."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.RandomState(0)
    inits = []

    def const(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    def w(name, *shape):
        return const(name, (rng.standard_normal(shape) * 0.2).astype(np.float32))

    n = helper.make_node
    nodes = [
        n("Conv", ["x", w("w1", 16, 3, 3, 3), w("b1", 16)], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        n("Conv", ["x", w("w0", 8, 3, 7, 7)], ["wide"], pads=[3, 3, 3, 3], strides=[2, 2]),
        n("Relu", ["c1"], ["r1"]),
        n("Conv", ["r1", w("w2", 16, 1, 3, 3)], ["c2"], pads=[1, 1, 1, 1], group=16),
        n("Conv", ["c2", w("w3", 32, 16, 1, 1), w("b3", 32)], ["c3"]),
        n("Conv", ["c3", w("w4", 32, 32, 3, 3)], ["c4"], pads=[1, 1, 1, 1]),
        n("MaxPool", ["c4"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        n("AveragePool", ["p1"], ["p2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("GlobalAveragePool", ["p2"], ["g"]),
        n("Conv", ["g", w("w5", 32, 32, 1, 1)], ["c5"]),
        n("Sigmoid", ["c5"], ["s"]),
        n("Mul", ["p2", "s"], ["scaled"]),
        n("GlobalAveragePool", ["scaled"], ["g2"]),
        n("Flatten", ["g2"], ["f"]),
        n("Gemm", ["f", w("fc", 10, 32), w("fcb", 10)], ["logits"], transB=1),
        n("Softmax", ["logits"], ["probs"], axis=-1),
        n("DequantizeLinear", [const("fcq", rng.randint(-64, 64, (10, 32)).astype(np.int8)),
                               const("fcs", (rng.rand(10) * 0.01 + 0.001).astype(np.float32)),
                               const("fcz", np.zeros(10, np.int8))], ["fcw"], axis=0),
        n("Gemm", ["f", "fcw", "fcb"], ["logits_q"], transB=1),
        n("Add", ["big", "big"], ["sum"]),
        n("QuantizeLinear", ["sum", const("qs", np.array(0.05, np.float32)), const("qz", np.array(128, np.uint8))],
          ["q"]),
        n("DequantizeLinear", ["q", "qs", "qz"], ["rounded"]),
        n("NonMaxSuppression", ["boxes", "scores", const("k", np.array([5], np.int64)),
                                const("iou", np.array([0.5], np.float32))], ["selected"]),
    ]
    graph = helper.make_graph(nodes, "tinyrt_warmup", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32]),
        helper.make_tensor_value_info("big", TensorProto.FLOAT, [1, 65536]),  # Add runs its kernel from 64K
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 8, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2, 8]),
    ], [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10]),
        helper.make_tensor_value_info("logits_q", TensorProto.FLOAT, [1, 10]),
        helper.make_tensor_value_info("sum", TensorProto.FLOAT, [1, 65536]),
        helper.make_tensor_value_info("rounded", TensorProto.FLOAT, [1, 65536]),
        helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3]),
        helper.make_tensor_value_info("wide", TensorProto.FLOAT, [1, 8, 16, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tinyrt")
    model.doc_string = "Compiles every tinyrt numba kernel once (tinyrt warmup); made by tests/boards/make_models.py"
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", action="store_true", help="re-export the models (torch) before the goldens")
    p.add_argument("--golden-for", metavar="MODEL", help="write a golden for any model (first input fed)")
    p.add_argument("--out", help="with --golden-for: where to write it (default MODEL with .npz)")
    p.add_argument("--batch", type=int, default=1, help="with --golden-for: size of a dynamic first dim")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", action="store_true", help="write tinyrt/data/warmup.onnx (tinyrt warmup)")
    a = p.parse_args(argv)
    if a.warmup:
        print(build_warmup())
        return 0
    if a.golden_for:
        import onnxruntime as ort
        inp = ort.InferenceSession(a.golden_for, providers=["CPUExecutionProvider"]).get_inputs()[0]
        shape = tuple(d if isinstance(d, int) else (a.batch if i == 0 else 1) for i, d in enumerate(inp.shape))
        out = a.out or os.path.splitext(a.golden_for)[0] + ".npz"
        np.savez_compressed(out, **golden(a.golden_for, inp.name, shape, a.seed))
        print("%s: %s %s -> %s" % (a.golden_for, inp.name, shape, out))
        return 0
    if a.models:
        build_models()
        write_image()
    write_goldens()
    return 0


if __name__ == "__main__":
    sys.exit(main())
