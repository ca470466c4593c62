"""Kernel wrappers: what ``kernels_select`` binds in place of a step's numpy op.

A wrapper is made per step at load (``WRAPPERS[(domain, op_type)](backend, step, constants)``, or None
where its kernel cannot serve that node) and is called like the op: ``wrapper(*inputs, **attributes)``.
It holds what it can prepare once (packed weights, geometry per input shape), runs its kernel where the
kernel covers the inputs, and falls back to the numpy op (``wrapper.ref``) for the rest, so results never
depend on the path. It may also offer:

* ``kernel_name``: what ``tinyrt profile``, ``trace`` and ``code`` show as the kernel;
* ``specialize(args, fixed)``: a call for one input signature of the compiled program (tinyrt/program.py),
  with everything that follows from the shapes bound once (``fixed[j]``: input j has the same value on
  every run); returns (call, work) or None.

One module per kernel family: conv.py (Conv, FusedConv, Gemm; qgemm.py: Gemm with int8 weights), pool.py,
eltwise.py, detection.py, channels.py (ConcatShuffle, channel Slices); and
numpy_conv.py, the numpy path's prepared Conv, and numpy_pointwise_depthwise.py, its PointwiseDepthwise.
"""
from ..ops.registry import TINYRT_DOMAIN
from .channels import _channel_slice, _concat_shuffle
from .conv import _conv, _gemm
from .detection import _nms
from .eltwise import _AddKernel, _MulKernel, _QuantizeDequantizeKernel, _SoftmaxKernel
from .numpy_conv import _numpy_conv
from .numpy_pointwise_depthwise import _numpy_pointwise_depthwise
from .pool import _GlobalAvgPoolKernel, _avg_pool, _max_pool

# (domain, op_type) -> make(backend, step, constants): a wrapper for that step, or None
WRAPPERS = {
    ("", "Conv"): _conv,
    ("", "Gemm"): _gemm,
    (TINYRT_DOMAIN, "FusedConv"): _conv,
    ("", "MaxPool"): _max_pool,
    ("", "GlobalAveragePool"): lambda backend, step, constants: _GlobalAvgPoolKernel(backend, step),
    ("", "Softmax"): lambda backend, step, constants: _SoftmaxKernel(backend, step),
    ("", "AveragePool"): _avg_pool,
    ("", "Mul"): lambda backend, step, constants: _MulKernel(backend, step),
    ("", "Add"): lambda backend, step, constants: _AddKernel(backend, step),
    ("", "NonMaxSuppression"): _nms,
    (TINYRT_DOMAIN, "ConcatShuffle"): _concat_shuffle,
    ("", "Slice"): _channel_slice,
    (TINYRT_DOMAIN, "QuantizeDequantize"): lambda backend, step, constants: _QuantizeDequantizeKernel(
        backend, step, step.inputs[1] in constants),
}

# the numpy path's wrappers: (domain, op_type) -> make(step, constants)
NUMPY_WRAPPERS = {
    ("", "Conv"): _numpy_conv,
    (TINYRT_DOMAIN, "FusedConv"): _numpy_conv,
    (TINYRT_DOMAIN, "PointwiseDepthwise"): _numpy_pointwise_depthwise,
}
