"""RNN, GRU and LSTM against onnxruntime: torch's nn.LSTM/GRU/RNN exported (bidirectional, several layers,
batch_first), and single nodes with every attribute: sequence_lens, initial states, clip, activations with
alpha/beta, input_forget, peepholes, linear_before_reset, layout (onnxruntime refuses layout=1, so that is
held to layout 0 transposed)."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import tinyrt  # noqa: E402


def close(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    tol = 1e-4 * max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    err = float(np.abs(got.astype(np.float64) - want).max()) if want.size else 0.0
    assert err <= tol, "max abs error %g > %g" % (err, tol)


def run_both(data, feeds):
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = tinyrt.InferenceSession(data).run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        close(g, w)
    return got


# --- torch's exports ----------------------------------------------------------------------------------------

TORCH_CASES = [
    ("LSTM", dict(num_layers=1, bidirectional=False, batch_first=False)),
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=False)),
    ("GRU", dict(num_layers=1, bidirectional=False, batch_first=True)),
    ("RNN", dict(num_layers=2, bidirectional=True, batch_first=True, nonlinearity="relu")),
    ("RNN", dict(num_layers=1, bidirectional=False, batch_first=False)),
]


@pytest.mark.slow
@pytest.mark.parametrize("kind,kwargs", TORCH_CASES, ids=["%s-%d" % (k, i) for i, (k, _) in enumerate(TORCH_CASES)])
def test_torch_export(kind, kwargs, tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = getattr(torch.nn, kind)(input_size=5, hidden_size=7, **kwargs).eval()
    x = torch.randn((2, 6, 5) if kwargs["batch_first"] else (6, 2, 5))
    path = str(tmp_path / "rnn.onnx")
    torch.onnx.export(net, (x,), path, input_names=["x"], opset_version=14, dynamo=False)
    got = run_both(open(path, "rb").read(), {"x": x.numpy()})
    with torch.no_grad():
        ref = net(x)[0].numpy()
    close(got[0], ref)


# --- single nodes -------------------------------------------------------------------------------------------

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
SEQ, BATCH, INPUT, HIDDEN = 5, 3, 4, 6


def node_model(op_type, attrs, with_lens=True, with_init=True, with_peep=False, layout=0, opset=14):
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    g = GATES[op_type]
    rs = np.random.RandomState(3)
    inits = {
        "W": rs.uniform(-1, 1, (dirs, g * HIDDEN, INPUT)).astype(np.float32),
        "R": rs.uniform(-1, 1, (dirs, g * HIDDEN, HIDDEN)).astype(np.float32),
        "B": rs.uniform(-1, 1, (dirs, 2 * g * HIDDEN)).astype(np.float32),
    }
    names = ["X", "W", "R", "B", "", ""]
    feeds = {"X": rs.standard_normal((SEQ, BATCH, INPUT)).astype(np.float32)}
    if with_lens:
        names[4] = "lens"
        feeds["lens"] = np.array([5, 2, 0][:BATCH], np.int32) if op_type != "LSTM" else np.array([5, 3, 1], np.int32)
    if with_init:
        names[5] = "h0"
        feeds["h0"] = rs.standard_normal((dirs, BATCH, HIDDEN)).astype(np.float32)
        if op_type == "LSTM":
            names.append("c0")
            feeds["c0"] = rs.standard_normal((dirs, BATCH, HIDDEN)).astype(np.float32)
    if with_peep:
        while len(names) < 7:
            names.append("")
        names.append("P")
        inits["P"] = rs.uniform(-1, 1, (dirs, 3 * HIDDEN)).astype(np.float32)
    if layout:
        feeds = {k: (v.transpose(1, 0, 2).copy() if k in ("X", "h0", "c0") else v) for k, v in feeds.items()}
        attrs = dict(attrs, layout=1)
    outs = ["Y", "Y_h"] + (["Y_c"] if op_type == "LSTM" else [])
    node = helper.make_node(op_type, names, outs, hidden_size=HIDDEN, **attrs)
    dtypes = {"lens": TensorProto.INT32}
    graph = helper.make_graph(
        [node], "rnn",
        [helper.make_tensor_value_info(k, dtypes.get(k, TensorProto.FLOAT), v.shape) for k, v in feeds.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString(), feeds


NODE_CASES = [
    ("RNN", dict(direction="forward")),
    ("RNN", dict(direction="reverse", activations=["Relu"])),
    ("RNN", dict(direction="bidirectional", clip=0.7, activations=["Tanh", "LeakyRelu"], activation_alpha=[0.2])),
    ("GRU", dict(direction="forward")),
    ("GRU", dict(direction="reverse", linear_before_reset=1)),
    ("GRU", dict(direction="bidirectional", clip=1.5, linear_before_reset=1,
                 activations=["HardSigmoid", "Tanh", "Sigmoid", "ScaledTanh"],
                 activation_alpha=[0.3, 0.9], activation_beta=[0.4, 1.1])),
    ("LSTM", dict(direction="forward")),
    ("LSTM", dict(direction="reverse", input_forget=1)),
    ("LSTM", dict(direction="bidirectional", clip=2.0)),
    ("LSTM", dict(direction="forward", activations=["Sigmoid", "Affine", "Softsign"], activation_alpha=[0.5],
                  activation_beta=[0.1])),
]


@pytest.mark.parametrize("op_type,attrs", NODE_CASES, ids=["%s-%d" % (k, i) for i, (k, _) in enumerate(NODE_CASES)])
@pytest.mark.parametrize("with_lens", [False, True])
def test_node_matches_onnxruntime(op_type, attrs, with_lens):
    data, feeds = node_model(op_type, attrs, with_lens=with_lens)
    run_both(data, feeds)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_lstm_peepholes_and_no_initial_state(direction):
    data, feeds = node_model("LSTM", dict(direction=direction), with_init=False, with_peep=True)
    run_both(data, feeds)


@pytest.mark.parametrize("op_type", ["RNN", "GRU", "LSTM"])
def test_layout_1_is_layout_0_transposed(op_type):
    attrs = dict(direction="bidirectional")
    data0, feeds0 = node_model(op_type, attrs)
    data1, feeds1 = node_model(op_type, attrs, layout=1)
    want = ort.InferenceSession(data0, providers=["CPUExecutionProvider"]).run(None, feeds0)
    got = tinyrt.InferenceSession(data1).run(None, feeds1)
    close(got[0], want[0].transpose(2, 0, 1, 3))       # Y: (batch, seq, dirs, hidden)
    for g, w in zip(got[1:], want[1:]):
        close(g, w.transpose(1, 0, 2))                  # Y_h, Y_c: (batch, dirs, hidden)


def test_unknown_activation_refused_at_load():
    data, _ = node_model("RNN", dict(activations=["Gelu"]))
    with pytest.raises(tinyrt.UnsupportedError, match="activation 'Gelu'"):
        tinyrt.InferenceSession(data)
