"""onnxruntime's own Python API tests, rewritten here, run against onnxruntime and against tinyrt.

onnxruntime checks its Python API with onnxruntime/test/python/onnxruntime_test_python.py (models from its
testdata folder). The tests below check the same behaviours in our own words, on models built here with
onnx.helper, and each runs twice: ``rt`` is the onnxruntime module, then the tinyrt module
(``import tinyrt as ort``). Left out are the features tinyrt does not claim: OrtValue, IOBinding, device
memory (allocators, memory infos, devices), custom-op and execution-provider libraries, LoRA adapters,
tuning results of GPU providers, bfloat16, and onnxruntime's exact error wording and error classes (we check
the Python class a script would catch, not the message). Tests of GPU providers that onnxruntime skips when
no GPU is present are left out too: they check nothing on either runtime here.

The second half (``test_tinyrt_*``) checks what the port cannot: that outputs belong to the caller on both
kernel paths, optimised and not, and the profile file's contents.
"""
import json
import os
import threading
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyrt

RUNTIMES = {"onnxruntime": onnxruntime, "tinyrt": tinyrt}


@pytest.fixture(params=sorted(RUNTIMES))
def rt(request):
    return RUNTIMES[request.param]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def model(nodes, inputs, outputs, initializers=(), opset=13, name="g", **kwargs):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kwargs)
    m.ir_version = 8
    return m


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def square_model():
    """Y = X * X for X [3, 2] (onnxruntime's mul_1.onnx)."""
    return model([helper.make_node("Mul", ["X", "X"], ["Y"])], [vi("X", TensorProto.FLOAT, [3, 2])],
                 [vi("Y", TensorProto.FLOAT, [3, 2])]).SerializeToString()


def matmul_model(rows=3):
    """Y = X @ [[1], [2]] (onnxruntime's matmul_1.onnx; matmul_2.onnx with a symbolic first dimension)."""
    w = numpy_helper.from_array(np.array([[1.0], [2.0]], np.float32), "W")
    return model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [vi("X", TensorProto.FLOAT, [rows, 2])],
                 [vi("Y", TensorProto.FLOAT, [rows, 1])], [w]).SerializeToString()


def logical_and_model():
    return model([helper.make_node("And", ["input1:0", "input:0"], ["output:0"])],
                 [vi("input1:0", TensorProto.BOOL, [2, 2]), vi("input:0", TensorProto.BOOL, [2, 2])],
                 [vi("output:0", TensorProto.BOOL, [2, 2])]).SerializeToString()


def string_identity_model():
    return model([helper.make_node("Identity", ["input:0"], ["output:0"])],
                 [vi("input:0", TensorProto.STRING, [2, 2])],
                 [vi("output:0", TensorProto.STRING, [2, 2])]).SerializeToString()


X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
X_SQUARED = X * X
X_TIMES_W = np.array([[5.0], [11.0], [17.0]], np.float32)


# --- module level -----------------------------------------------------------------------------------------

def test_get_version_string(rt):
    assert rt.get_version_string() is not None


def test_get_build_info(rt):
    assert "Build Info" in rt.get_build_info()


def test_get_providers(rt):
    assert "CPUExecutionProvider" in rt.get_available_providers()
    assert rt.get_all_providers()[-1] == "CPUExecutionProvider"
    sess = rt.InferenceSession(square_model(), providers=rt.get_available_providers())
    assert "CPUExecutionProvider" in sess.get_providers()


def test_telemetry_can_be_switched(rt):
    rt.disable_telemetry_events()
    rt.enable_telemetry_events()


def test_logger_settings(rt):
    rt.set_default_logger_severity(3)
    rt.set_default_logger_verbosity(0)
    rt.set_default_logger_severity(2)
    rt.set_seed(7)


def test_device(rt):
    device = rt.get_device()
    assert "CPU" in device or "GPU" in device


def test_enums(rt):
    level = rt.GraphOptimizationLevel
    assert [int(level.ORT_DISABLE_ALL), int(level.ORT_ENABLE_BASIC), int(level.ORT_ENABLE_EXTENDED),
            int(level.ORT_ENABLE_LAYOUT), int(level.ORT_ENABLE_ALL)] == [0, 1, 2, 3, 99]
    assert level.ORT_ENABLE_ALL.name == "ORT_ENABLE_ALL"
    assert [int(rt.ExecutionMode.ORT_SEQUENTIAL), int(rt.ExecutionMode.ORT_PARALLEL)] == [0, 1]
    assert [int(rt.ExecutionOrder.DEFAULT), int(rt.ExecutionOrder.PRIORITY_BASED),
            int(rt.ExecutionOrder.MEMORY_EFFICIENT)] == [0, 1, 2]


def test_capi_exception_names(rt):
    state = rt.capi.onnxruntime_pybind11_state
    for name in ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError", "RuntimeException",
                 "InvalidProtobuf", "ModelLoaded", "NotImplemented", "InvalidGraph", "EPFail"):
        assert issubclass(getattr(state, name), Exception)


def test_check_and_normalize_provider_args(rt):
    module = __import__(rt.__name__ + ".capi.onnxruntime_inference_collection",
                        fromlist=["check_and_normalize_provider_args"])
    check = module.check_and_normalize_provider_args
    valid = ["a", "b", "c"]
    assert check(None, None, valid) == ([], [])
    assert check(["a"], None, valid) == (["a"], [{}])
    assert check(["a", "b"], None, valid) == (["a", "b"], [{}, {}])
    assert check([("a", {1: 2}), "b"], None, valid) == (["a", "b"], [{"1": "2"}, {}])
    assert check(["a", "b"], [{1: 2}, {}], valid) == (["a", "b"], [{"1": "2"}, {}])
    with pytest.warns(UserWarning):
        assert check(["a", "b", "a"], [{"x": 1}, {}, {"y": 2}], valid) == (["a", "b"], [{"x": "1"}, {}])
    for providers, options in [(3, None), ([3], None), (["a"], 3), (["a"], ["not dict"]), (["a", "b"], [{1: 2}]),
                               ([("a", {1: 2})], [{3: 4}])]:
        with pytest.raises(ValueError):
            check(providers, options, valid)


def test_set_default_logger_callback(rt):
    messages = []

    def keep(severity, category, logid, code_location, message):
        messages.append((severity, category, logid, code_location, message))

    try:
        rt.set_default_logger_callback(keep, severity=0)
        sess = rt.InferenceSession(square_model(), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(sess.run(["Y"], {"X": X})[0], X_SQUARED)
        assert messages, "the callback was never called"
        for record in messages:
            assert [type(v) for v in record] == [int, str, str, str, str]
        rt.set_default_logger_callback(None)
        rt.set_default_logger_callback(lambda *args: None)
        rt.set_default_logger_callback(keep, severity=4)
        for bad in (5, -1):
            with pytest.raises(RuntimeError):
                rt.set_default_logger_callback(keep, severity=bad)
        with pytest.raises(RuntimeError):
            rt.set_default_logger_callback("not a callable")

        def raising(*args):
            raise ValueError("from the callback")

        rt.set_default_logger_callback(raising, severity=0)
        rt.InferenceSession(square_model())            # must not fail because the callback does
    finally:
        rt.set_default_logger_callback(None)
        rt.set_default_logger_severity(2)


# --- sessions: loading and metadata -----------------------------------------------------------------------

def test_run_model(rt):
    sess = rt.InferenceSession(square_model(), providers=rt.get_available_providers())
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    assert [(i.name, i.shape) for i in inputs] == [("X", [3, 2])]
    assert [(o.name, o.shape) for o in outputs] == [("Y", [3, 2])]
    assert len(sess.get_input_memory_infos()) == 1 and sess.get_input_memory_infos()[0] is not None
    assert len(sess.get_output_memory_infos()) == 1 and sess.get_output_memory_infos()[0] is not None
    assert len(sess.get_input_epdevices()) == 1
    res = sess.run([outputs[0].name], {inputs[0].name: X})
    np.testing.assert_allclose(res[0], X_SQUARED, rtol=1e-5, atol=1e-8)


def test_tuning_results_of_a_cpu_session(rt):
    sess = rt.InferenceSession(square_model())
    assert sess.get_tuning_results() == []
    sess.set_tuning_results([])


def test_dynamic_provider_options_on_the_cpu(rt):
    sess = rt.InferenceSession(square_model())
    sess.set_ep_dynamic_options({"ep.dynamic.workload_type": "Efficient"})
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], X_SQUARED)


def test_run_model_from_path_and_path_object(rt, tmp_path):
    path = tmp_path / "square.onnx"
    path.write_bytes(square_model())
    for source in (str(path), path):
        sess = rt.InferenceSession(source, providers=rt.get_available_providers())
        np.testing.assert_allclose(sess.run(None, {"X": X})[0], X_SQUARED)


def test_run_model_from_bytes(rt):
    sess = rt.InferenceSession(square_model())
    assert sess.get_inputs()[0].name == "X" and sess.get_inputs()[0].shape == [3, 2]
    assert sess.get_outputs()[0].name == "Y" and sess.get_outputs()[0].shape == [3, 2]
    np.testing.assert_allclose(sess.run(["Y"], {"X": X})[0], X_SQUARED)


def test_run_matmul(rt):
    sess = rt.InferenceSession(matmul_model())
    assert sess.get_outputs()[0].shape == [3, 1]
    np.testing.assert_allclose(sess.run(["Y"], {"X": X})[0], X_TIMES_W)


def test_non_contiguous_input(rt):
    sess = rt.InferenceSession(matmul_model())
    x = np.array([[2.0, 1.0], [4.0, 3.0], [6.0, 5.0]], np.float32)[:, [1, 0]]
    np.testing.assert_allclose(sess.run(["Y"], {"X": x})[0], X_TIMES_W)
    np.testing.assert_allclose(sess.run(["Y"], {"X": np.ascontiguousarray(x)})[0], X_TIMES_W)
    x_t = np.array([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]], np.float32).T   # Fortran order
    np.testing.assert_allclose(sess.run(["Y"], {"X": x_t})[0], X_TIMES_W)


def test_symbolic_dimension(rt):
    sess = rt.InferenceSession(matmul_model(rows="None"))
    assert sess.get_inputs()[0].shape == ["None", 2]
    assert sess.get_outputs()[0].shape == ["None", 1]
    np.testing.assert_allclose(sess.run(["Y"], {"X": X})[0], X_TIMES_W)


def test_boolean_inputs_keep_file_order(rt):
    sess = rt.InferenceSession(logical_and_model())
    a = np.array([[True, True], [False, False]])
    b = np.array([[True, False], [True, False]])
    ins = sess.get_inputs()
    assert [(i.name, i.shape, i.type) for i in ins] == [("input1:0", [2, 2], "tensor(bool)"),
                                                          ("input:0", [2, 2], "tensor(bool)")]
    out = sess.get_outputs()[0]
    assert (out.name, out.shape, out.type) == ("output:0", [2, 2], "tensor(bool)")
    np.testing.assert_equal(sess.run([out.name], {"input1:0": a, "input:0": b})[0], a & b)


def test_missing_input_is_a_value_error(rt):
    sess = rt.InferenceSession(logical_and_model())
    with pytest.raises(ValueError):
        sess.run([], {"input:0": np.array([[True, True], [False, False]])})


def test_wrong_shape_is_invalid_argument(rt):
    sess = rt.InferenceSession(square_model())
    with pytest.raises(rt.capi.onnxruntime_pybind11_state.InvalidArgument):
        sess.run(None, {"X": np.ones((2, 3), np.float32)})


def test_wrong_dtype_is_invalid_argument(rt):
    sess = rt.InferenceSession(square_model())
    with pytest.raises(rt.capi.onnxruntime_pybind11_state.InvalidArgument):
        sess.run(None, {"X": X.astype(np.float64)})


def test_unknown_output_name_is_invalid_argument(rt):
    sess = rt.InferenceSession(square_model())
    with pytest.raises(rt.capi.onnxruntime_pybind11_state.InvalidArgument):
        sess.run(["nope"], {"X": X})


def test_missing_file_is_no_such_file(rt, tmp_path):
    with pytest.raises(rt.capi.onnxruntime_pybind11_state.NoSuchFile):
        rt.InferenceSession(str(tmp_path / "absent.onnx"))


def test_model_of_wrong_type_is_a_type_error(rt):
    with pytest.raises(TypeError):
        rt.InferenceSession(123)


def test_model_meta(rt):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", TensorProto.FLOAT, [1])],
              [vi("y", TensorProto.FLOAT, [1])], name="squeezenet_old", producer_name="onnx-caffe2")
    meta = rt.InferenceSession(m.SerializeToString()).get_modelmeta()
    assert meta.producer_name == "onnx-caffe2"
    assert meta.graph_name == "squeezenet_old"
    assert meta.domain == "" and meta.description == "" and meta.graph_description == ""
    assert meta.version == 2 ** 63 - 1 and meta.custom_metadata_map == {}


def test_model_meta_every_field(rt):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", TensorProto.FLOAT, [1])],
              [vi("y", TensorProto.FLOAT, [1])], producer_name="tf2onnx converter", producer_version="1.9",
              doc_string="the model", domain="org.example", model_version=3)
    m.graph.doc_string = "the graph"
    helper.set_model_props(m, {"classes": "cat,dog"})
    meta = rt.InferenceSession(m.SerializeToString()).get_modelmeta()
    assert (meta.producer_name, meta.domain, meta.description, meta.graph_description, meta.version) == \
        ("tf2onnx converter", "org.example", "the model", "the graph", 3)
    assert meta.custom_metadata_map == {"classes": "cat,dog"}


def test_session_options_defaults(rt):
    so = rt.SessionOptions()
    assert so.graph_optimization_level == rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.execution_mode == rt.ExecutionMode.ORT_SEQUENTIAL
    assert so.execution_order == rt.ExecutionOrder.DEFAULT
    assert (so.enable_cpu_mem_arena, so.enable_mem_pattern, so.enable_mem_reuse) == (True, True, True)
    assert (so.enable_profiling, so.use_deterministic_compute) == (False, False)
    assert (so.intra_op_num_threads, so.inter_op_num_threads) == (0, 0)
    assert (so.logid, so.log_severity_level, so.log_verbosity_level) == ("", -1, 0)
    assert (so.optimized_model_filepath, so.profile_file_prefix) == ("", "onnxruntime_profile_")


def test_run_options_defaults_and_config(rt):
    ro = rt.RunOptions()
    assert (ro.logid, ro.terminate, ro.log_severity_level, ro.log_verbosity_level) == ("", False, -1, 0)
    assert ro.only_execute_path_to_fetches is False
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    assert ro.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
    sess = rt.InferenceSession(square_model(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run([], {"X": X}, ro)[0], X_SQUARED)


def test_terminate_stops_the_run(rt):
    sess = rt.InferenceSession(square_model())
    ro = rt.RunOptions()
    ro.terminate = True
    with pytest.raises(rt.capi.onnxruntime_pybind11_state.Fail):
        sess.run(None, {"X": X}, ro)
    ro.terminate = False
    np.testing.assert_allclose(sess.run(None, {"X": X}, ro)[0], X_SQUARED)


def test_graph_optimization_level(rt):
    so = rt.SessionOptions()
    so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    assert so.graph_optimization_level == rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    sess = rt.InferenceSession(logical_and_model(), sess_options=so)
    a = np.array([[True, True], [False, False]])
    b = np.array([[True, False], [True, False]])
    np.testing.assert_equal(sess.run([], {"input1:0": a, "input:0": b})[0], a & b)


def test_execution_mode(rt):
    so = rt.SessionOptions()
    assert so.execution_mode == rt.ExecutionMode.ORT_SEQUENTIAL
    so.execution_mode = rt.ExecutionMode.ORT_PARALLEL
    assert so.execution_mode == rt.ExecutionMode.ORT_PARALLEL
    sess = rt.InferenceSession(square_model(), so)
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], X_SQUARED)


def test_session_config_entries(rt):
    so = rt.SessionOptions()
    so.add_session_config_entry("CONFIG_KEY", "CONFIG_VAL")
    assert so.get_session_config_entry("CONFIG_KEY") == "CONFIG_VAL"
    with pytest.raises(RuntimeError):
        so.get_session_config_entry("INVALID_KEY")


def test_session_options_are_readable_from_the_session(rt):
    so = rt.SessionOptions()
    so.intra_op_num_threads = 1
    so.logid = "mine"
    sess = rt.InferenceSession(square_model(), sess_options=so)
    got = sess.get_session_options()
    assert got.intra_op_num_threads == 1 and got.logid == "mine"


def free_dimension_model():
    """x [Dim1 (DATA_BATCH), Dim2 (DATA_CHANNEL), 5] -> Abs (onnxruntime's abs_free_dimensions.onnx)."""
    m = model([helper.make_node("Abs", ["x"], ["y"])], [vi("x", TensorProto.FLOAT, ["Dim1", "Dim2", 5])],
              [vi("y", TensorProto.FLOAT, ["Dim1", "Dim2", 5])])
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[0].denotation, dims[1].denotation = "DATA_BATCH", "DATA_CHANNEL"
    return m.SerializeToString()


def test_free_dimension_override_by_name(rt):
    so = rt.SessionOptions()
    so.add_free_dimension_override_by_name("Dim1", 4)
    so.add_free_dimension_override_by_name("Dim2", 6)
    sess = rt.InferenceSession(free_dimension_model(), sess_options=so)
    assert sess.get_inputs()[0].name == "x" and sess.get_inputs()[0].shape == [4, 6, 5]
    x = -np.ones((4, 6, 5), np.float32)
    np.testing.assert_equal(sess.run(None, {"x": x})[0], -x)


def test_free_dimension_override_by_denotation(rt):
    so = rt.SessionOptions()
    so.add_free_dimension_override_by_denotation("DATA_BATCH", 3)
    so.add_free_dimension_override_by_denotation("DATA_CHANNEL", 5)
    sess = rt.InferenceSession(free_dimension_model(), sess_options=so)
    assert sess.get_inputs()[0].shape == [3, 5, 5]


def conv_model():
    """A small Conv + Relu + Gemm classifier whose weights are big enough to go to an external file."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "conv_w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "conv_b")
    fc = numpy_helper.from_array(rng.standard_normal((4 * 6 * 6, 10)).astype(np.float32), "fc_w")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "flat")
    nodes = [helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "flat"], ["f"]), helper.make_node("MatMul", ["f", "fc_w"], ["y"])]
    return model(nodes, [vi("x", TensorProto.FLOAT, [1, 1, 8, 8])], [vi("y", TensorProto.FLOAT, [1, 10])],
                 [w, b, fc, shape])


CONV_X = np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 1, 8, 8)


def check_same_outputs(rt, original, saved_path):
    want = rt.InferenceSession(original).run(None, {"x": CONV_X})[0]
    got = rt.InferenceSession(saved_path).run(None, {"x": CONV_X})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_model_serialization(rt, in_tmp):
    so = rt.SessionOptions()
    so.log_severity_level = 1
    so.logid = "TestModelSerialization"
    so.optimized_model_filepath = "./optimized.onnx"
    data = conv_model().SerializeToString()
    rt.InferenceSession(data, sess_options=so)
    assert os.path.isfile(so.optimized_model_filepath)
    check_same_outputs(rt, data, so.optimized_model_filepath)


def test_model_serialization_with_external_initializers(rt, in_tmp):
    so = rt.SessionOptions()
    so.optimized_model_filepath = "./with_external.onnx"
    so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "external.bin")
    so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "100")
    data = conv_model().SerializeToString()
    rt.InferenceSession(data, sess_options=so)
    assert os.path.isfile("with_external.onnx") and os.path.isfile("external.bin")
    check_same_outputs(rt, data, "with_external.onnx")


def test_model_serialization_with_external_initializers_to_directory(rt, in_tmp):
    os.mkdir("out")
    so = rt.SessionOptions()
    so.optimized_model_filepath = os.path.join("out", "in_dir.onnx")
    so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "in_dir.bin")
    so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "100")
    rt.InferenceSession(conv_model().SerializeToString(), sess_options=so)
    assert os.path.isfile(so.optimized_model_filepath) and os.path.isfile(os.path.join("out", "in_dir.bin"))


def test_model_serialization_of_a_model_with_external_data(rt, in_tmp):
    onnx.save_model(conv_model(), "original.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="original.bin", size_threshold=64)
    so = rt.SessionOptions()
    so.optimized_model_filepath = "first.onnx"
    so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "first.bin")
    so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "100")
    rt.InferenceSession("original.onnx", sess_options=so)
    so2 = rt.SessionOptions()
    so2.optimized_model_filepath = "second.onnx"
    so2.add_session_config_entry("session.optimized_model_external_initializers_file_name", "second.bin")
    so2.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "20")
    rt.InferenceSession("first.onnx", sess_options=so2)
    assert os.path.isfile("second.onnx") and os.path.isfile("second.bin")
    os.remove("first.onnx")     # the second file stands on its own
    check_same_outputs(rt, "original.onnx", "second.onnx")


def add_mul_add_model():
    nodes = [helper.make_node("Add", ["a", "b"], ["s"], name="add_0"), helper.make_node("Mul", ["s", "b"], ["p"], name="mul_0"),
             helper.make_node("Add", ["p", "a"], ["y"], name="add_1")]
    return model(nodes, [vi("a", TensorProto.FLOAT, [3]), vi("b", TensorProto.FLOAT, [3])],
                 [vi("y", TensorProto.FLOAT, [3])]).SerializeToString()


def test_graph_provider_assignment_info(rt):
    so = rt.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    sess = rt.InferenceSession(add_mul_add_model(), sess_options=so)
    subgraphs = sess.get_provider_graph_assignment_info()
    assert len(subgraphs) == 3
    assert all(s.ep_name == "CPUExecutionProvider" and len(s.get_nodes()) == 1 for s in subgraphs)
    ids = sorted("%s:%s/%s" % (n.domain, n.op_type, n.name) for s in subgraphs for n in s.get_nodes())
    assert ids == [":Add/add_0", ":Add/add_1", ":Mul/mul_0"]


def test_graph_provider_assignment_info_needs_the_config_entry(rt):
    sess = rt.InferenceSession(add_mul_add_model())
    with pytest.raises(rt.capi.onnxruntime_pybind11_state.Fail) as info:
        sess.get_provider_graph_assignment_info()
    assert "session.record_ep_graph_assignment_info" in str(info.value)


def test_session_options_from_the_model(rt, in_tmp, monkeypatch):
    m = model([helper.make_node("Mul", ["X", "X"], ["Y"])], [vi("X", TensorProto.FLOAT, [3, 2])],
              [vi("Y", TensorProto.FLOAT, [3, 2])])
    settings = {"session_options": {"inter_op_num_threads": 5, "intra_op_num_threads": 2,
                                    "graph_optimization_level": 99, "enable_profiling": 1}}
    helper.set_model_props(m, {"ort_config": json.dumps(settings)})
    monkeypatch.setenv("ORT_LOAD_CONFIG_FROM_MODEL", "1")
    sess = rt.InferenceSession(m.SerializeToString())
    so = sess.get_session_options()
    assert (so.inter_op_num_threads, so.intra_op_num_threads) == (5, 2)
    assert so.execution_mode == rt.ExecutionMode.ORT_SEQUENTIAL
    assert so.graph_optimization_level == rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.enable_profiling is True
    os.remove(sess.end_profiling())


def test_external_initializers_from_files_in_memory(rt, tmp_path):
    bias = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    t = TensorProto(name="bias", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "Bias_not_on_disk.bin"), ("offset", "0"), ("length", str(bias.nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    m = model([helper.make_node("Add", ["x", "bias"], ["y"])], [vi("x", TensorProto.FLOAT, [4])],
              [vi("y", TensorProto.FLOAT, [4])], [t])
    path = tmp_path / "model.onnx"
    path.write_bytes(m.SerializeToString())
    so = rt.SessionOptions()
    contents = bias.tobytes()     # onnxruntime reads it in place: it must outlive the session
    so.add_external_initializers_from_files_in_memory(["Bias_not_on_disk.bin"], [contents], [len(contents)])
    sess = rt.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    np.testing.assert_equal(sess.run(None, {"x": np.ones(4, np.float32)})[0], bias + 1)


# --- providers ----------------------------------------------------------------------------------------------

def test_invalid_set_providers(rt):
    sess = rt.InferenceSession(square_model(), providers=["CPUExecutionProvider"])
    with pytest.raises(RuntimeError) as info:
        sess.set_providers(["InvalidProvider"])
    assert "Unknown Provider Type: InvalidProvider" in str(info.value)


def test_set_providers_to_cpu(rt):
    sess = rt.InferenceSession(square_model(), providers=["CPUExecutionProvider"])
    sess.set_providers(["CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in sess.get_provider_options()
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], X_SQUARED)


def test_unavailable_provider_falls_back_to_cpu(rt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sess = rt.InferenceSession(square_model(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], X_SQUARED)


def test_fallback_switches(rt):
    sess = rt.InferenceSession(square_model())
    sess.disable_fallback()
    sess.enable_fallback()
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], X_SQUARED)


# --- feeds and outputs --------------------------------------------------------------------------------------

def test_list_as_input(rt):
    sess = rt.InferenceSession(square_model())
    res = sess.run([], {"X": X.tolist()})
    np.testing.assert_allclose(res[0], X_SQUARED)
    assert res[0].dtype == np.float32


def test_int_list_for_float_input(rt):
    sess = rt.InferenceSession(matmul_model(rows="N"))
    np.testing.assert_allclose(sess.run(None, {"X": [[1, 2]]})[0], [[5.0]])


def test_empty_output_names_mean_all(rt):
    sess = rt.InferenceSession(square_model())
    assert len(sess.run([], {"X": X})) == 1
    assert len(sess.run(None, {"X": X})) == 1


def test_run_model_multiple_threads(rt):
    so = rt.SessionOptions()
    so.log_verbosity_level = 1
    so.logid = "MultiThreadsTest"
    sess = rt.InferenceSession(square_model(), sess_options=so)
    failures = []

    def work(logid):
        ro = rt.RunOptions()
        ro.logid = logid
        try:
            for _ in range(20):
                np.testing.assert_allclose(sess.run([], {"X": X}, run_options=ro)[0], X_SQUARED)
        except Exception as e:  # reported below: an assert in a thread would be lost
            failures.append(e)

    threads = [threading.Thread(target=work, args=("thread%d" % i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_input_passed_through_is_not_aliased(rt):
    shape = [1, 2, 2, 2]
    ten = numpy_helper.from_array(np.array(10, np.float32), "ten")
    m = model([helper.make_node("Add", ["input_0", "ten"], ["plus_10"])], [vi("input_0", TensorProto.FLOAT, shape)],
              [vi("plus_10", TensorProto.FLOAT, shape), vi("input_0", TensorProto.FLOAT, shape)], [ten], opset=21)
    so = rt.SessionOptions()
    so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = rt.InferenceSession(m.SerializeToString(), sess_options=so)
    kept = []
    for i in range(5):
        x = np.full(shape, float(i), np.float32)
        outputs = sess.run(None, {"input_0": x})
        assert not np.shares_memory(outputs[1], x)
        x[...] = -1
        kept.append(outputs)
    for i, (plus, same) in enumerate(kept):
        np.testing.assert_array_equal(plus, np.full(shape, i + 10.0, np.float32))
        np.testing.assert_array_equal(same, np.full(shape, float(i), np.float32))


def test_overridable_initializers(rt):
    w = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "W")
    m = model([helper.make_node("Add", ["x", "W"], ["y"])], [vi("x", TensorProto.FLOAT, [2]),
                                                           vi("W", TensorProto.FLOAT, [2])],
              [vi("y", TensorProto.FLOAT, [2])], [w])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sess = rt.InferenceSession(m.SerializeToString())
    assert [i.name for i in sess.get_inputs()] == ["x"]
    assert [(i.name, i.shape, i.type) for i in sess.get_overridable_initializers()] == [("W", [2], "tensor(float)")]
    x = np.zeros(2, np.float32)
    np.testing.assert_equal(sess.run(None, {"x": x})[0], [1.0, 2.0])
    np.testing.assert_equal(sess.run(None, {"x": x, "W": np.array([5.0, 6.0], np.float32)})[0], [5.0, 6.0])
    np.testing.assert_equal(sess.run(None, {"x": x})[0], [1.0, 2.0])


def test_constant_initializer_is_not_overridable(rt):
    w = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "W")
    m = model([helper.make_node("Add", ["x", "W"], ["y"])], [vi("x", TensorProto.FLOAT, [2])],
              [vi("y", TensorProto.FLOAT, [2])], [w])
    sess = rt.InferenceSession(m.SerializeToString())
    assert sess.get_overridable_initializers() == []
    with pytest.raises(rt.capi.onnxruntime_pybind11_state.InvalidArgument):
        sess.run(None, {"x": np.zeros(2, np.float32), "W": np.zeros(2, np.float32)})


def test_inferred_output_shape(rt):
    m = model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Transpose", ["r"], ["y"], perm=[1, 0])],
              [vi("x", TensorProto.FLOAT, ["N", 3])], [helper.make_empty_tensor_value_info("y")])
    sess = rt.InferenceSession(m.SerializeToString())
    out = sess.get_outputs()[0]
    assert (out.shape, out.type) == ([3, "N"], "tensor(float)")


def test_tinyrt_infers_output_shapes_like_onnxruntime():
    rng = np.random.default_rng(1)

    def const(name, a):
        return numpy_helper.from_array(np.asarray(a), name)

    inits = [const("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32)),
             const("fc", rng.standard_normal((8, 5)).astype(np.float32)),
             const("shape", np.array([0, -1], np.int64)), const("axes", np.array([1], np.int64)),
             const("idx", np.array([0, 2], np.int64))]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["conv"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["pool"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        helper.make_node("ArgMax", ["probs"], ["label"], axis=1, keepdims=0),
        helper.make_node("Reshape", ["pool", "shape"], ["reshaped"]),
        helper.make_node("Transpose", ["reshaped"], ["transposed"]),
        helper.make_node("ReduceMean", ["relu"], ["mean"], axes=[2, 3], keepdims=0),          # axes: an attribute until 18
        helper.make_node("Cast", ["label"], ["label_f"], to=TensorProto.FLOAT),
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Gather", ["x_shape", "idx"], ["picked"]),
        helper.make_node("Unsqueeze", ["label_f", "axes"], ["unsq"]),
        helper.make_node("Concat", ["probs", "unsq"], ["cat"], axis=1),
        helper.make_node("Equal", ["label", "label"], ["same"]),
        helper.make_node("MatMul", ["flat", "fc"], ["mm"]),
    ]
    names = [n.output[0] for n in nodes]
    m = model(nodes, [vi("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
              [helper.make_empty_tensor_value_info(n) for n in names], inits, opset=13)
    data = m.SerializeToString()
    theirs = {o.name: (o.type, o.shape) for o in onnxruntime.InferenceSession(data).get_outputs()}
    ours = {o.name: (o.type, o.shape) for o in tinyrt.InferenceSession(data).get_outputs()}
    assert ours == theirs


def test_output_types_rules_are_one_per_op_type():
    """get_outputs()' inferred types come from the op records (ops.registry.infers): every version of an op
    carries the same rule, so a node's inferred output never depends on which version its opset resolves to;
    a node at an opset below its op's first version still finds it."""
    from tinyrt.ops import registry
    with_rule = set()
    for domain, op_type in registry.registered():
        rules = {getattr(impl.fn, "infer_types", None) for impl in registry._REGISTRY[(domain, op_type)].values()}
        assert len(rules) == 1, op_type
        if rules != {None}:
            assert domain == "", op_type
            with_rule.add(op_type)
    assert {"Conv", "ConvInteger", "MaxPool", "Relu", "Add", "Equal", "IsNaN", "ReduceMean", "ArgMax", "Where",
            "Cast", "Reshape", "Squeeze", "Shape", "Gather", "Constant", "Resize", "TopK", "NonZero"} <= with_rule
    assert registry.types_rule("ReduceSum", 1) is registry.types_rule("ReduceSum", 13) is not None
    assert registry.types_rule("Softmax", None) is registry.types_rule("Softmax", 13) is not None
    assert registry.types_rule("ConstantOfShape", 1) is registry.types_rule("ConstantOfShape", 9) is not None
    assert registry.types_rule("NoSuchOp", 13) is None


# --- strings, sequences, optionals --------------------------------------------------------------------------

def test_string_input(rt):
    sess = rt.InferenceSession(string_identity_model())
    for words in (["this", "is", "identity", "test"], ["Olá", "你好", "여보세요", "hello"]):
        x = np.array(words, dtype=str).reshape((2, 2))
        i, o = sess.get_inputs()[0], sess.get_outputs()[0]
        assert (i.name, i.shape, i.type) == ("input:0", [2, 2], "tensor(string)")
        assert (o.name, o.shape, o.type) == ("output:0", [2, 2], "tensor(string)")
        np.testing.assert_equal(sess.run([o.name], {i.name: x})[0], x)


def test_string_list_as_input(rt):
    sess = rt.InferenceSession(string_identity_model())
    x = np.array(["this", "is", "identity", "test"], dtype=str).reshape((2, 2))
    np.testing.assert_equal(sess.run([], {"input:0": x.tolist()})[0], x)


def test_string_input_as_bytes(rt):
    sess = rt.InferenceSession(string_identity_model())
    x = np.array([b"this", b"is", b"identity", b"test"]).reshape((2, 2))
    np.testing.assert_equal(sess.run(["output:0"], {"input:0": x})[0].astype("|S8"), x)


def test_string_input_as_objects(rt):
    sess = rt.InferenceSession(string_identity_model())
    x = np.array(["this", "is", "identity", "test"], object).reshape((2, 2))
    np.testing.assert_equal(sess.run(["output:0"], {"input:0": x})[0], x)


def test_string_input_as_void(rt):
    sess = rt.InferenceSession(string_identity_model())
    x = np.array([b"must", b"have", b"same", b"size"], dtype=np.void).reshape((2, 2))
    expected = np.array([["must", "have"], ["same", "size"]], dtype=object)
    np.testing.assert_equal(sess.run(["output:0"], {"input:0": x})[0], expected)


def seq_type(elem):
    return helper.make_sequence_type_proto(helper.make_tensor_type_proto(elem, None))


def test_sequence_length(rt):
    m = model([helper.make_node("SequenceLength", ["X"], ["Y"])],
              [helper.make_value_info("X", seq_type(TensorProto.FLOAT))], [vi("Y", TensorProto.INT64, [])])
    sess = rt.InferenceSession(m.SerializeToString())
    assert (sess.get_inputs()[0].name, sess.get_inputs()[0].type) == ("X", "seq(tensor(float))")
    assert (sess.get_outputs()[0].name, sess.get_outputs()[0].type) == ("Y", "tensor(int64)")
    x = [np.arange(6, dtype=np.float32).reshape(2, 3)] * 2
    assert sess.run(["Y"], {"X": x})[0] == np.array(2, np.int64)


def test_sequence_construct(rt):
    m = model([helper.make_node("SequenceConstruct", ["tensor1", "tensor2"], ["output_sequence"])],
              [vi("tensor1", TensorProto.INT64, [2, 3]), vi("tensor2", TensorProto.INT64, [2, 3])],
              [helper.make_value_info("output_sequence", seq_type(TensorProto.INT64))])
    sess = rt.InferenceSession(m.SerializeToString())
    assert [i.type for i in sess.get_inputs()] == ["tensor(int64)", "tensor(int64)"]
    assert sess.get_outputs()[0].type == "seq(tensor(int64))"
    a = np.array([1, 0, 3, 44, 23, 11], np.int64).reshape(2, 3)
    b = np.arange(1, 7, dtype=np.int64).reshape(2, 3)
    np.testing.assert_array_equal(sess.run(["output_sequence"], {"tensor1": a, "tensor2": b})[0], [a, b])


def test_sequence_insert(rt):
    m = model([helper.make_node("SequenceInsert", ["input_seq", "tensor"], ["output_sequence"])],
              [helper.make_value_info("input_seq", seq_type(TensorProto.INT64)), vi("tensor", TensorProto.INT64, [2, 3])],
              [helper.make_value_info("output_sequence", seq_type(TensorProto.INT64))])
    so = rt.SessionOptions()
    so.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL
    sess = rt.InferenceSession(m.SerializeToString(), sess_options=so)
    t = np.array([1, 0, 3, 44, 23, 11], np.int64).reshape(2, 3)
    np.testing.assert_array_equal(sess.run(["output_sequence"], {"tensor": t, "input_seq": []})[0], [t])


def test_optional_sequence_input(rt):
    opt = helper.make_optional_type_proto(seq_type(TensorProto.FLOAT))
    m = model([helper.make_node("Identity", ["x"], ["y"])], [helper.make_value_info("x", opt)],
              [helper.make_value_info("y", opt)], opset=16)
    sess = rt.InferenceSession(m.SerializeToString())
    x = [np.array([1, 2, 3, 4, 5], np.float32)]
    np.testing.assert_allclose(sess.run([sess.get_outputs()[0].name], {sess.get_inputs()[0].name: x})[0], x)


def tree_classifier(modes, values, true_ids, false_ids, class_treeids, class_nodeids, class_weights,
                    class_ids=None, labels=(0, 1), features=None, post_transform="LOGISTIC", **extra):
    n = len(modes)
    extra.setdefault("base_values", [-0.405])
    if not extra["base_values"]:
        del extra["base_values"]
    node = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "probs"], domain="ai.onnx.ml", nodes_treeids=[0] * n,
        nodes_nodeids=list(range(n)), nodes_featureids=features or [0] * n, nodes_values=values,
        nodes_modes=modes, nodes_truenodeids=true_ids, nodes_falsenodeids=false_ids,
        nodes_missing_value_tracks_true=[0] * n, nodes_hitrates=[1.0] * n, class_treeids=class_treeids,
        class_nodeids=class_nodeids, class_ids=class_ids or [0] * len(class_weights), class_weights=class_weights,
        classlabels_int64s=list(labels), post_transform=post_transform, **extra)
    graph = helper.make_graph([node], "trees", [vi("X", TensorProto.FLOAT, [None, 3])],
                              [vi("label", TensorProto.INT64, [None]), vi("probs", TensorProto.FLOAT, [None, len(labels)])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    return m.SerializeToString()


def test_tree_ensemble_logistic(rt):
    x = {"X": np.array([[0.1, 0.0, 0.0]], np.float32)}
    split = tree_classifier(["BRANCH_LT", "LEAF", "LEAF"], [0.5, 0.0, 0.0], [1, 0, 0], [2, 0, 0], [0, 0], [1, 2],
                            [0.3, -0.3])
    np.testing.assert_allclose(rt.InferenceSession(split).run(None, x)[1][0][1], 1 / (1 + np.exp(0.105)), atol=1e-5)
    leaf = tree_classifier(["LEAF"], [0.0], [0], [0], [0], [0], [0.0])
    np.testing.assert_allclose(rt.InferenceSession(leaf).run(None, x)[1][0][1], 1 / (1 + np.exp(0.405)), atol=1e-5)
    negative = tree_classifier(["LEAF"], [0.0], [0], [0], [0], [0], [-0.405], base_values=[0.0])
    np.testing.assert_allclose(rt.InferenceSession(negative).run(None, x)[1][0][1], 1 / (1 + np.exp(0.405)),
                               atol=1e-5)


@pytest.mark.parametrize("post_transform", ["NONE", "SOFTMAX", "LOGISTIC"])
def test_tinyrt_tree_ensemble_multiclass_matches_onnxruntime(post_transform):
    # two trees over three classes; rows on both sides of every split, a NaN feature
    modes = ["BRANCH_LEQ", "LEAF", "BRANCH_GT", "LEAF", "LEAF"]
    node = dict(modes=modes, values=[0.5, 0, 1.5, 0, 0], true_ids=[1, 0, 3, 0, 0], false_ids=[2, 0, 4, 0, 0],
                features=[0, 0, 2, 0, 0])
    data = tree_classifier(node["modes"], node["values"], node["true_ids"], node["false_ids"],
                           class_treeids=[0, 0, 0, 0, 0, 0], class_nodeids=[1, 1, 3, 4, 4, 3],
                           class_weights=[0.5, 0.25, 1.0, 0.75, 0.1, 0.2], class_ids=[0, 1, 2, 1, 0, 0],
                           labels=(10, 20, 30), features=node["features"], post_transform=post_transform,
                           base_values=[0.1, 0.0, -0.1])
    x = np.array([[0.2, 0, 0], [0.9, 0, 2.0], [0.9, 0, 1.0], [np.nan, 0, 3.0]], np.float32)
    want = onnxruntime.InferenceSession(data).run(None, {"X": x})
    got = tinyrt.InferenceSession(data).run(None, {"X": x})
    assert got[0].tolist() == want[0].tolist()
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)


# --- profiling ----------------------------------------------------------------------------------------------

def test_profiling_file(rt, in_tmp):
    so = rt.SessionOptions()
    so.enable_profiling = True
    sess = rt.InferenceSession(square_model(), sess_options=so)
    sess.run([], {"X": X})
    path = sess.end_profiling()
    with open(path) as f:
        lines = f.readlines()
    assert "[" in lines[0] and "]" in lines[-1]
    for line in lines[1:-1]:
        for tag in ("pid", "dur", "ts", "ph", "X", "name", "args"):
            assert tag in line
    events = json.loads("".join(lines))
    assert any(e["cat"] == "Node" and e["args"]["op_name"] == "Mul" for e in events)


def test_profiling_file_prefix(rt, in_tmp):
    so = rt.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = "mine"
    sess = rt.InferenceSession(square_model(), sess_options=so)
    sess.run(None, {"X": X})
    assert os.path.basename(sess.end_profiling()).startswith("mine")


def test_profiling_start_times_are_in_order(rt, in_tmp):
    def start_time():
        so = rt.SessionOptions()
        so.enable_profiling = True
        sess = rt.InferenceSession(square_model(), sess_options=so)
        start = sess.get_profiling_start_time_ns()
        os.remove(sess.end_profiling())
        return start

    first, second, third = start_time(), start_time(), start_time()
    assert first <= second <= third


def test_end_profiling_without_profiling(rt):
    assert rt.InferenceSession(square_model()).end_profiling() == ""


# --- tinyrt only: outputs the caller owns, the profile's contents ------------------------------------------

KERNEL_PATHS = ["numpy", "numba"]
LEVELS = [0, 99]


def tiny_session(data, kernels, level):
    so = tinyrt.SessionOptions()
    so.kernels = kernels
    so.graph_optimization_level = level
    return tinyrt.InferenceSession(data, so)


def owned_outputs_model():
    """Outputs of every kind that could alias something the session keeps or the caller fed."""
    c = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "c")
    k = numpy_helper.from_array(np.array([[3.0, 4.0]], np.float32), "k")
    shape = numpy_helper.from_array(np.array([2, 1], np.int64), "shape")
    nodes = [
        helper.make_node("Add", ["x", "c"], ["sum"]),                        # computed
        helper.make_node("Identity", ["c"], ["init_copy"]),                  # an initializer through Identity
        helper.make_node("Constant", [], ["const"], value=numpy_helper.from_array(np.array([7.0, 8.0], np.float32))),
        helper.make_node("Reshape", ["x", "shape"], ["x_reshaped"]),         # a view of the feed
        helper.make_node("Identity", ["x"], ["x_same"]),                     # the feed itself
        helper.make_node("Mul", ["k", "k"], ["folded"]),                     # folded at load when optimised
        helper.make_node("Transpose", ["k"], ["k_t"]),                       # a view of an initializer
    ]
    outputs = [vi(n, TensorProto.FLOAT, None) for n in
               ("sum", "init_copy", "const", "x_reshaped", "x_same", "folded", "k_t", "c", "x")]
    return model(nodes, [vi("x", TensorProto.FLOAT, [2])], outputs, [c, k, shape]).SerializeToString()


@pytest.mark.parametrize("kernels", KERNEL_PATHS)
@pytest.mark.parametrize("level", LEVELS)
def test_tinyrt_writing_into_outputs_never_changes_a_later_run(kernels, level):
    data = owned_outputs_model()
    expected = onnxruntime.InferenceSession(data).run(None, {"x": np.array([10.0, 20.0], np.float32)})
    sess = tiny_session(data, kernels, level)
    for _ in range(3):
        x = np.array([10.0, 20.0], np.float32)
        got = sess.run(None, {"x": x})
        for name, a, b in zip([o.name for o in sess.get_outputs()], got, expected):
            np.testing.assert_array_equal(a, b, err_msg=name)
        for a in got:
            assert not np.shares_memory(a, x)
            a[...] = -99          # the caller owns it: this must not reach the session or the feed
        assert x.tolist() == [10.0, 20.0]


def folded_views_model():
    """Outputs that are views of values a compiled program folds (the same arrays on every run): an Unsqueeze
    of a Shape, and an If's branch returning an Unsqueeze of one of its Constants."""
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value_ints=[5, 6]), helper.make_node("Unsqueeze", ["c", "axes"], ["u"])],
        "branch", [], [vi("u", TensorProto.INT64, None)])
    other = helper.make_graph([helper.make_node("Constant", [], ["d"], value_ints=[1, 2, 3])],
                              "other", [], [vi("d", TensorProto.INT64, None)])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Unsqueeze", ["s", "axes"], ["shape_view"]),
             helper.make_node("If", ["b"], ["chosen"], then_branch=branch, else_branch=other)]
    return model(nodes, [vi("x", TensorProto.FLOAT, [2, 3]), vi("b", TensorProto.BOOL, [])],
                 [vi("shape_view", TensorProto.INT64, None), vi("chosen", TensorProto.INT64, None)],
                 [axes]).SerializeToString()


@pytest.mark.parametrize("kernels", KERNEL_PATHS)
@pytest.mark.parametrize("level", LEVELS)
def test_tinyrt_writing_into_views_of_folded_values_never_changes_a_later_run(kernels, level):
    data = folded_views_model()
    feeds = {"x": np.zeros((2, 3), np.float32), "b": np.array(True)}
    expected = onnxruntime.InferenceSession(data).run(None, feeds)
    sess = tiny_session(data, kernels, level)
    for _ in range(4):  # the first run of a signature goes step by step and makes the program the others run
        got = sess.run(None, feeds)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
        for a in got:
            a[...] = -99
    assert sess.plan.last_program is not None


@pytest.mark.parametrize("kernels", KERNEL_PATHS)
@pytest.mark.parametrize("level", LEVELS)
def test_tinyrt_outputs_are_distinct_arrays(kernels, level):
    # two outputs naming one value (y and its Identity): writing into one leaves the other alone
    m = model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Identity", ["y"], ["z"])],
              [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.FLOAT, [2]), vi("z", TensorProto.FLOAT, [2])])
    y, z = tiny_session(m.SerializeToString(), kernels, level).run(None, {"x": np.array([1.0, 2.0], np.float32)})
    y[...] = 0
    assert z.tolist() == [1.0, 2.0]


def test_tinyrt_fresh_outputs_are_not_copied_again():
    # the common case costs nothing: a computed output is handed over as it is
    sess = tinyrt.InferenceSession(square_model())
    seen = []

    def keep(step, inputs, compute):
        outs = compute()
        seen.extend(outs)
        return outs

    y = sess.run_with_hook(None, {"X": X}, keep)[0]
    assert any(y is a for a in seen)


def test_tinyrt_profile_has_one_event_per_node(in_tmp):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="first"), helper.make_node("Neg", ["a"], ["b"]),
             helper.make_node("Transpose", ["b"], ["y"], name="last", perm=[1, 0])]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [2, 3])], [vi("y", TensorProto.FLOAT, [3, 2])])
    so = tinyrt.SessionOptions()
    so.enable_profiling = True
    so.graph_optimization_level = 0
    sess = tinyrt.InferenceSession(m.SerializeToString(), so)
    sess.run(None, {"x": np.ones((2, 3), np.float32)})
    sess.run(None, {"x": np.ones((2, 3), np.float32)})
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    node_events = [e for e in events if e["cat"] == "Node"]
    assert [e["name"] for e in node_events] == ["first_kernel_time", "b_kernel_time", "last_kernel_time"] * 2
    assert [e["args"]["op_name"] for e in node_events[:3]] == ["Relu", "Neg", "Transpose"]
    assert node_events[2]["args"]["input_type_shape"] == [{"float": [2, 3]}]
    assert node_events[2]["args"]["output_type_shape"] == [{"float": [3, 2]}]
    session_events = [e["name"] for e in events if e["cat"] == "Session"]
    assert session_events[:2] == ["model_loading_array", "session_initialization"]
    assert session_events.count("model_run") == 2
    for e in events:
        assert e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0


def test_tinyrt_terminate_from_another_thread_stops_between_nodes():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["y"])]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.FLOAT, [2])])
    sess = tinyrt.InferenceSession(m.SerializeToString(), _unoptimised())
    ro = tinyrt.RunOptions()
    ro.logid = "job 7"
    ran = []

    def set_terminate_after_first(step, inputs, compute):
        ran.append(step.node.op_type)
        ro.terminate = True          # as another thread would, while the run is under way
        return compute()

    # the terminate check is the session's own hook, outside ours: chain them the way run() does
    from tinyrt.session import _chain, _terminate_hook
    with pytest.raises(tinyrt.errors.RunTerminated, match=r"\[job 7\].*before Neg"):
        sess._run(None, {"x": np.ones(2, np.float32)}, _chain([_terminate_hook(ro), set_terminate_after_first]),
                  ro, None)
    assert ran == ["Relu"]


def _unoptimised():
    so = tinyrt.SessionOptions()
    so.graph_optimization_level = 0
    return so


def test_tinyrt_errors_are_onnxruntime_compatible():
    state = tinyrt.capi.onnxruntime_pybind11_state
    assert issubclass(tinyrt.InputError, state.InvalidArgument) and issubclass(tinyrt.InputError, ValueError)
    assert issubclass(tinyrt.ModelError, state.InvalidGraph)
    assert issubclass(tinyrt.UnsupportedError, state.NotImplemented)
    assert issubclass(tinyrt.errors.RunTerminated, state.Fail)


@pytest.mark.parametrize("kernels", KERNEL_PATHS)
@pytest.mark.parametrize("level", LEVELS)
def test_tinyrt_string_tensors_match_onnxruntime(kernels, level):
    words = helper.make_tensor("words", TensorProto.STRING, [3], [b"cat", "caf\xe9".encode(), b"dog"])
    nodes = [
        helper.make_node("Cast", ["x"], ["x_text"], to=TensorProto.STRING),             # numbers -> text
        helper.make_node("Cast", ["s"], ["s_number"], to=TensorProto.FLOAT),             # text -> numbers
        helper.make_node("Concat", ["x_text", "words"], ["joined"], axis=0),
        helper.make_node("Gather", ["joined", "idx"], ["picked"], axis=0),
        helper.make_node("Equal", ["picked", "words"], ["same"]),
        helper.make_node("Constant", [], ["const"], value_strings=["a", "b"]),
        helper.make_node("Reshape", ["const", "shape"], ["const_2d"]),
    ]
    idx = numpy_helper.from_array(np.array([3, 1, 5], np.int64), "idx")
    shape = numpy_helper.from_array(np.array([2, 1], np.int64), "shape")
    outputs = [vi("x_text", TensorProto.STRING, [3]), vi("s_number", TensorProto.FLOAT, [3]),
               vi("joined", TensorProto.STRING, [6]), vi("picked", TensorProto.STRING, [3]),
               vi("same", TensorProto.BOOL, [3]), vi("const_2d", TensorProto.STRING, [2, 1])]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [3]), vi("s", TensorProto.STRING, [3])], outputs,
              [words, idx, shape], opset=19)
    data = m.SerializeToString()
    feeds = {"x": np.array([0.1, -2.5, 1e10], np.float32), "s": np.array(["1.5", " 2", "-inf"])}
    expected = onnxruntime.InferenceSession(data).run(None, feeds)
    got = tiny_session(data, kernels, level).run(None, feeds)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tolist() == b.tolist()


def test_tinyrt_optional_input_may_be_left_out():
    opt = helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    m = model([helper.make_node("OptionalHasElement", ["x"], ["has"])], [helper.make_value_info("x", opt)],
              [vi("has", TensorProto.BOOL, [])], opset=18)
    sess = tinyrt.InferenceSession(m.SerializeToString())
    assert sess.get_inputs()[0].type == "optional(tensor(float))"
    assert sess.run(None, {})[0] == np.array(False)
    assert sess.run(None, {"x": np.ones(2, np.float32)})[0] == np.array(True)


def test_tinyrt_profile_command_writes_the_same_trace(tmp_path, capsys):
    from tinyrt import cli
    path = tmp_path / "square.onnx"
    path.write_bytes(square_model())
    trace = tmp_path / "trace.json"
    assert cli.main(["profile", str(path), "--runs", "2", "--warmup", "0", "--trace", str(trace)]) in (0, None)
    events = json.loads(trace.read_text())
    assert [e["args"]["op_name"] for e in events if e["cat"] == "Node"] == ["Mul", "Mul"]
    assert [e["name"] for e in events if e["cat"] == "Session"] == ["model_run", "model_run"]
    assert all(e["ph"] == "X" for e in events)


@pytest.mark.parametrize("level", LEVELS)
def test_tinyrt_overridable_initializer_returned_as_output_is_copied(level):
    w = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "W")
    m = model([helper.make_node("Identity", ["W"], ["w_out"]), helper.make_node("Add", ["x", "W"], ["y"])],
              [vi("x", TensorProto.FLOAT, [2]), vi("W", TensorProto.FLOAT, [2])],
              [vi("w_out", TensorProto.FLOAT, [2]), vi("y", TensorProto.FLOAT, [2])], [w])
    sess = tiny_session(m.SerializeToString(), None, level)
    x = np.zeros(2, np.float32)
    for feeds in ({"x": x}, {"x": x, "W": np.array([5.0, 6.0], np.float32)}, {"x": x}):
        w_out, y = sess.run(None, feeds)
        expected = feeds.get("W", np.array([1.0, 2.0], np.float32))
        assert w_out.tolist() == expected.tolist() and y.tolist() == expected.tolist()
        w_out[...] = -1
        y[...] = -1
    assert feeds["x"].tolist() == [0.0, 0.0]


def test_tinyrt_refuses_two_class_tree_layouts_it_has_not_checked():
    data = tree_classifier(["BRANCH_LT", "LEAF", "LEAF"], [0.5, 0, 0], [1, 0, 0], [2, 0, 0], [0, 0], [1, 2],
                           [0.3, 0.6], class_ids=[0, 1], post_transform="SOFTMAX")
    with pytest.raises(tinyrt.UnsupportedError, match="two classes"):
        tinyrt.InferenceSession(data)


@pytest.mark.parametrize("kernels", KERNEL_PATHS)
def test_tinyrt_outputs_of_a_real_network_survive_later_runs(kernels):
    # the shipped classifier (convs on the numba kernels' channels-last buffers): an output kept from one run
    # is not overwritten by the next, and writing into it changes nothing later
    path = os.path.join(os.path.dirname(tinyrt.__file__), "data", "default_classifier.onnx")
    so = tinyrt.SessionOptions()
    so.kernels = kernels
    sess = tinyrt.InferenceSession(path, so)
    arg = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in arg.shape]
    a, b = (np.random.default_rng(i).random(shape, dtype=np.float32) for i in (0, 1))
    first = sess.run(None, {arg.name: a})
    kept = [o.copy() for o in first]
    second = sess.run(None, {arg.name: b})
    for o, k in zip(first, kept):
        np.testing.assert_array_equal(o, k)
    for o in first + second:
        o[...] = 0
    again = sess.run(None, {arg.name: a})
    for o, k in zip(again, kept):
        np.testing.assert_allclose(o, k, rtol=1e-6, atol=1e-6)


def test_tinyrt_device_memory_classes_say_what_to_do_instead():
    from tinyrt.capi.onnxruntime_pybind11_state import Fail, OrtValueVector, RunOptions  # noqa: F401
    with pytest.raises(tinyrt.UnsupportedError, match="numpy arrays"):
        tinyrt.OrtValue(np.zeros(1))
    with pytest.raises(AttributeError, match="numpy arrays"):
        tinyrt.OrtValue.ortvalue_from_numpy(np.zeros(1))
    assert not hasattr(tinyrt.OrtValue, "from_dlpack")
    with pytest.raises(tinyrt.UnsupportedError):
        tinyrt.InferenceSession(square_model()).io_binding()


@pytest.mark.slow
def test_tinyrt_optimized_model_files_round_trip_the_node_suite(tmp_path):
    # every node-suite model tinyrt runs, saved after its passes and read back, gives the same outputs
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import node_suite
    from node_exclusions import EXCLUDED
    path = str(tmp_path / "saved.onnx")
    checked, problems = 0, []
    for case in node_suite.collect_cases():
        if case.name in EXCLUDED:
            continue
        so = tinyrt.SessionOptions()
        so.optimized_model_filepath = path
        so.max_tensor_bytes = 1 << 30
        try:
            sess = tinyrt.InferenceSession(case.model.SerializeToString(), so)
        except tinyrt.UnsupportedError:
            continue
        reread = tinyrt.SessionOptions()
        reread.max_tensor_bytes = 1 << 30
        saved = tinyrt.InferenceSession(path, reread)
        ins = [node_suite._normalize(x) for x in case.data_sets[0][0]]
        feeds = dict(zip([i.name for i in sess.get_inputs()],
                         [[node_suite._normalize(v) for v in x] if isinstance(x, list) else x for x in ins]))
        for a, b in zip(sess.run(None, feeds), saved.run(None, feeds)):
            why = node_suite.compare(b, a)
            if why:
                problems.append("%s: %s" % (case.name, why))
        checked += 1
    assert checked > 1000 and problems == [], problems[:10]
