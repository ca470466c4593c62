"""Issue 21 (hardening, round two), inside ops and kernels: items 1 (a short bias on the numba depthwise
conv read memory past its end), 5 (a huge stride looped 2^40 times), 15 (batch 0, zero channels, huge k,
a bad option: raw Python errors). Each on both kernel paths (the suite runs twice; these also pick the
path per test), checked against onnxruntime or exact values."""
import time

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

import tinyrt
from bounded import check_bounded
from hardening_models import F, const, model, vi

PATHS = ["numba", "numpy"]


def session(data, kernels, **options):
    o = tinyrt.SessionOptions()
    o.kernels = kernels
    for k, v in options.items():
        setattr(o, k, v)
    return tinyrt.InferenceSession(data, o)


def oracle(data, feeds):
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)


def depthwise_with_bias(C, bias_shape):
    return model([helper.make_node("Conv", ["x", "w", "b"], ["y"], group=C)], [vi("x", [1, C, 1, 1])], [vi("y", None)],
                 [const("w", np.ones((C, 1, 1, 1)), np.float32), const("b", np.full(bias_shape, 2.0), np.float32)])


# --- item 1: every kernel gets exactly the shapes the numpy op checks ---------------------------------------

@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("bias_shape", [(1,), (63,), (64, 1), (1, 64), (65,)])
def test_a_bias_of_the_wrong_shape_is_refused_on_both_paths(kernels, bias_shape):
    sess = session(depthwise_with_bias(64, bias_shape), kernels)
    with pytest.raises(tinyrt.InputError, match=r"bias shape \(.*\), expected \(64,\)"):
        sess.run(None, {"x": np.ones((1, 64, 1, 1), np.float32)})


@pytest.mark.parametrize("kernels", PATHS)
def test_a_bias_of_the_right_shape_still_runs_on_the_kernel(kernels):
    data = depthwise_with_bias(64, (64,))
    x = np.random.default_rng(0).standard_normal((1, 64, 1, 1)).astype(np.float32)
    np.testing.assert_allclose(session(data, kernels).run(None, {"x": x})[0], oracle(data, {"x": x})[0], atol=1e-4)


@pytest.mark.slow
def test_a_huge_channel_count_with_a_short_bias_does_not_crash():
    # C = 2^23 with a bias of 1 value was a SIGSEGV on the numba path (the kernel read the bias by pointer)
    check_bounded("""
        import numpy as np, tinyrt, sys
        sys.path.insert(0, "tests")
        from test_hardening_kernels import depthwise_with_bias, session
        for kernels in ("numba", "numpy"):
            sess = session(depthwise_with_bias(1 << 23, (1,)), kernels)
            try:
                sess.run(None, {"x": np.ones((1, 1 << 23, 1, 1), np.float32)})
                raise SystemExit("ran")
            except tinyrt.InputError as e:
                assert "bias shape" in str(e), e
        """, timeout=300, memory_mb=2048)


# --- item 5: a stride of 2^40 must not loop 2^40 times ------------------------------------------------------

@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_huge_stride_is_quick(kernels, dtype):
    elem = 1 if dtype == np.float32 else 11
    data = model([helper.make_node("Conv", ["x", "w"], ["y"], group=2, strides=[1, 1 << 40])],
                 [vi("x", [1, 2, 3, 3], elem)], [vi("y", None, elem)], [const("w", np.ones((2, 1, 1, 1)), dtype)])
    x = np.arange(18, dtype=dtype).reshape(1, 2, 3, 3)
    start = time.time()
    got = session(data, kernels).run(None, {"x": x})[0]
    assert time.time() - start < 30  # 2^40 iterations would take hours; this is a hang guard, not a benchmark
    np.testing.assert_array_equal(got, x[:, :, :, :1])  # one output column: the first


@pytest.mark.parametrize("kernels", PATHS)
def test_a_stride_larger_than_the_kernel_keeps_the_results(kernels):
    # depthwise with a column stride, 3x3 kernel, dilation 2: the phases the taps read are all that run
    data = model([helper.make_node("Conv", ["x", "w"], ["y"], group=3, strides=[2, 5], dilations=[1, 2])],
                 [vi("x", [1, 3, 9, 23])], [vi("y", None)],
                 [const("w", np.random.default_rng(1).standard_normal((3, 1, 3, 3)), np.float32)])
    x = np.random.default_rng(2).standard_normal((1, 3, 9, 23)).astype(np.float32)
    np.testing.assert_allclose(session(data, kernels).run(None, {"x": x})[0], oracle(data, {"x": x})[0],
                               rtol=0, atol=1e-4 * 10)


# --- item 15: batch 0, zero output channels, an absurd k, a bad option --------------------------------------

@pytest.mark.parametrize("kernels", PATHS)
def test_gemm_of_batch_zero(kernels):
    data = model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], [vi("x", ["n", 4])], [vi("y", None)],
                 [const("w", np.ones((10, 4)), np.float32), const("b", np.ones(10), np.float32)])
    x = np.ones((0, 4), np.float32)
    got = session(data, kernels).run(None, {"x": x})[0]
    want = oracle(data, {"x": x})[0]
    assert got.shape == want.shape == (0, 10) and got.dtype == want.dtype


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("case", ["no output channels", "batch 0"])
def test_conv_with_nothing_to_compute(kernels, case):
    M, N = (0, 1) if case == "no output channels" else (4, 0)
    data = model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [vi("x", ["n", 3, 4, 4])],
                 [vi("y", None)], [const("w", np.ones((M, 3, 3, 3)), np.float32)])
    x = np.ones((N, 3, 4, 4), np.float32)
    got = session(data, kernels).run(None, {"x": x})[0]
    assert got.shape == (N, M, 4, 4)


@pytest.mark.parametrize("kernels", PATHS)
@pytest.mark.parametrize("k", [-(1 << 63), (1 << 63) - 1, -4, -3, 0, 3, 5])
@pytest.mark.parametrize("upper", [0, 1])
def test_trilu_with_any_k(kernels, k, upper):
    data = model([helper.make_node("Trilu", ["x", "k"], ["y"], upper=upper)], [vi("x", [3, 4])], [vi("y", None)],
                 [const("k", k)], opset=14)
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(session(data, kernels).run(None, {"x": x})[0], oracle(data, {"x": x})[0])


@pytest.mark.parametrize("value", ["lots", True, float("nan"), float("inf"), [1]])
def test_a_bad_max_tensor_bytes_is_an_input_error(value):
    data = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)])
    with pytest.raises(tinyrt.InputError, match="max_tensor_bytes"):
        session(data, "numpy", max_tensor_bytes=value)
