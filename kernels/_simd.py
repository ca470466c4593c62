"""SIMD vectors for compiled code: LANES float32 values that live in one machine register.

numba vectorises simple loops by itself, but not a register-blocked GEMM tile (kernels/gemm.py): that
needs a few dozen running sums kept in registers across a loop, which numba can only express as separate
variables. These intrinsics give it a vector type, ``f32vec``, and LLVM's vector operations on it, so a
tile is written as plain Python over a handful of vector variables and compiles to one instruction per
operation (``vfmadd231ps`` on x86, ``fmla`` on Arm).

    load(addr)              the LANES floats at addr (any alignment)
    load_first(addr, n)     the first n floats at addr, zeros after; nothing past them is read
    load_i8(addr)           the LANES int8 at addr, as floats (exact: kernels/qgemm.py's int8 weights)
    store(addr, v)          v to addr
    store_first(addr, v, n) the first n lanes of v to addr; nothing past them is written
    splat(x), splat_load(addr)   x (or the float at addr) in every lane
    fma(a, b, c)            a * b + c, one rounding where the CPU has a fused multiply-add (x86 since
                            Haswell, every aarch64, 32-bit Arm with VFPv4); else a multiply and an add
                            (two roundings: LLVM would call fmaf once a lane)
    add, mul, div           lane by lane
    at_least(v, lo)         lo where v < lo, else v      (NaN passes, as in numpy's clip)
    at_most(v, hi)          hi where v > hi, else v
    where_negative(v, a, b) a where v < 0, else b
    exp(v)                  e ** v on vectors (a polynomial, not libm: see ``exp``)
    rint(v)                 each lane rounded to an integer, half to even (numpy's rint)
    neg(v)                  -v

Memory is addressed by plain integers (``array.ctypes.data`` plus a byte offset): no arrays pass
through the tile code, so numba adds no reference counting to it (each count is a function call that
would spill every vector register). The caller keeps the arrays alive and the offsets in bounds.

LANES is the host's register width: 16 with AVX-512, 8 with AVX, else 4 (SSE, NEON); TINYRT_SIMD_LANES
(4, 8 or 16) overrides it, so the tests can run the narrower widths of other machines here. The numbers
do not depend on it: each output of a tile is one sum over k in order, whatever the width.
"""
import os

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, models, register_model

from ._target import llvm_function, machine


def _host_lanes():
    try:
        features = llvm.get_host_cpu_features()
    except RuntimeError:  # some hosts report no feature list
        return 4
    if features.get("avx512f"):
        return 16
    if features.get("avx"):
        return 8
    return 4


def _lanes():
    asked = os.environ.get("TINYRT_SIMD_LANES", "").strip()
    if not asked:
        return _host_lanes()
    if asked not in ("4", "8", "16"):
        raise ValueError("TINYRT_SIMD_LANES=%r: choose 4, 8 or 16 (or leave it unset)" % asked)
    return int(asked)


LANES = _lanes()
FMA = machine().fma  # a native fused multiply-add (see fma)
_F32 = ir.FloatType()
_VEC = ir.VectorType(_F32, LANES)
_I32, _I64 = ir.IntType(32), ir.IntType(64)
_MASK = ir.VectorType(ir.IntType(1), LANES)
# LLVM names overloaded intrinsics by their types; from LLVM 15 pointers have no element type
_PTR = "p0" if llvm.llvm_version_info[0] >= 15 else "p0v%df32" % LANES


class F32Vec(types.Type):
    def __init__(self):
        super().__init__(name="f32x%d" % LANES)


f32vec = F32Vec()


@register_model(F32Vec)
class _F32VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _pointer(builder, addr, ty):
    return builder.inttoptr(addr, ty.as_pointer())


def _llvm_function(builder, name, ret, args):
    return llvm_function(builder.module, ir.FunctionType(ret, args), name)


def _broadcast(builder, x):
    v = builder.insert_element(ir.Constant(_VEC, ir.Undefined), x, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _first(context, builder, n, n_type):
    """The mask of lanes 0 .. n-1."""
    n = context.cast(builder, n, n_type, types.int64)
    nv = builder.insert_element(ir.Constant(ir.VectorType(_I64, LANES), ir.Undefined), n, ir.Constant(_I32, 0))
    nv = builder.shuffle_vector(nv, nv, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))
    return builder.icmp_signed("<", ir.Constant(ir.VectorType(_I64, LANES), list(range(LANES))), nv)


def _is_vec(*ts):
    return all(t == f32vec for t in ts)


def _is_int(*ts):
    return all(isinstance(t, types.Integer) for t in ts)


@intrinsic
def load(typingctx, addr):
    if not _is_int(addr):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_pointer(builder, args[0], _VEC), align=4)
    return f32vec(addr), codegen


@intrinsic
def load_i8(typingctx, addr):
    if not _is_int(addr):
        return None

    def codegen(context, builder, sig, args):
        i8v = ir.VectorType(ir.IntType(8), LANES)
        q = builder.load(_pointer(builder, args[0], i8v), align=1)
        return builder.sitofp(builder.sext(q, ir.VectorType(_I32, LANES)), _VEC)
    return f32vec(addr), codegen


@intrinsic
def load_first(typingctx, addr, n):
    if not _is_int(addr, n):
        return None

    def codegen(context, builder, sig, args):
        fn = _llvm_function(builder, "llvm.masked.load.v%df32.%s" % (LANES, _PTR), _VEC,
                            [_VEC.as_pointer(), _I32, _MASK, _VEC])
        return builder.call(fn, [_pointer(builder, args[0], _VEC), ir.Constant(_I32, 4),
                                 _first(context, builder, args[1], sig.args[1]), ir.Constant(_VEC, [0.0] * LANES)])
    return f32vec(addr, n), codegen


@intrinsic
def store(typingctx, addr, v):
    if not (_is_int(addr) and _is_vec(v)):
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[1], _pointer(builder, args[0], _VEC), align=4)
        return context.get_dummy_value()
    return types.none(addr, v), codegen


@intrinsic
def store_first(typingctx, addr, v, n):
    if not (_is_int(addr, n) and _is_vec(v)):
        return None

    def codegen(context, builder, sig, args):
        fn = _llvm_function(builder, "llvm.masked.store.v%df32.%s" % (LANES, _PTR), ir.VoidType(),
                            [_VEC, _VEC.as_pointer(), _I32, _MASK])
        builder.call(fn, [args[1], _pointer(builder, args[0], _VEC), ir.Constant(_I32, 4),
                          _first(context, builder, args[2], sig.args[2])])
        return context.get_dummy_value()
    return types.none(addr, v, n), codegen


@intrinsic
def splat(typingctx, x):
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return _broadcast(builder, args[0])
    return f32vec(x), codegen


@intrinsic
def splat_load(typingctx, addr):
    if not _is_int(addr):
        return None

    def codegen(context, builder, sig, args):
        return _broadcast(builder, builder.load(_pointer(builder, args[0], _F32), align=4))
    return f32vec(addr), codegen


@intrinsic
def fma(typingctx, a, b, c):
    if not _is_vec(a, b, c):
        return None

    def codegen(context, builder, sig, args):
        if not FMA:
            return builder.fadd(builder.fmul(args[0], args[1]), args[2])
        return builder.call(_llvm_function(builder, "llvm.fma.v%df32" % LANES, _VEC, [_VEC] * 3), args)
    return f32vec(a, b, c), codegen


def _lane_op(name):
    def typer(typingctx, a, b):
        if not _is_vec(a, b):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, name)(*args)
        return f32vec(a, b), codegen
    typer.__name__ = name
    return intrinsic(typer)


add = _lane_op("fadd")
mul = _lane_op("fmul")
div = _lane_op("fdiv")


def _bound(op):
    """b where v OP b, else v: with a NaN in v the comparison is false and the NaN passes."""
    def typer(typingctx, v, b):
        if not _is_vec(v, b):
            return None

        def codegen(context, builder, sig, args):
            v, b = args
            return builder.select(builder.fcmp_ordered(op, v, b), b, v)
        return f32vec(v, b), codegen
    return intrinsic(typer)


at_least = _bound("<")
at_most = _bound(">")


@intrinsic
def where_negative(typingctx, v, a, b):
    if not _is_vec(v, a, b):
        return None

    def codegen(context, builder, sig, args):
        v, a, b = args
        return builder.select(builder.fcmp_ordered("<", v, ir.Constant(_VEC, [0.0] * LANES)), a, b)
    return f32vec(v, a, b), codegen


def _unary(name):
    """LLVM's vector intrinsic llvm.<name> (one lane at a time: e ** v, or rint's half-to-even rounding)."""
    def typer(typingctx, v):
        if not _is_vec(v):
            return None

        def codegen(context, builder, sig, args):
            return builder.call(_llvm_function(builder, "llvm.%s.v%df32" % (name, LANES), _VEC, [_VEC]), args)
        return f32vec(v), codegen
    typer.__name__ = name
    return intrinsic(typer)


rint = _unary("rint")

# exp: Cephes' expf on vectors (LLVM's llvm.exp.* would call libm once a lane). e ** x = 2 ** n * e ** r
# with n = rint(x * log2(e)) and r = x - n * ln(2) (ln 2 in two parts, so r is exact); e ** r on
# [-ln 2 / 2, ln 2 / 2] by a degree-7 polynomial, within 2 ulp of e ** x; 2 ** n made from its bits.
_EXP_HI, _EXP_LO = 88.72283935546875, -87.33654022216797  # above: inf; below: 0 (libm: denormals, < 1.2e-38)
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
             5.0000001201e-1)


@intrinsic
def exp(typingctx, v):
    if not _is_vec(v):
        return None

    def codegen(context, builder, sig, args):
        def const(c):
            return ir.Constant(_VEC, [float(c)] * LANES)

        def fma_(a, b, c):
            if FMA:
                return builder.call(_llvm_function(builder, "llvm.fma.v%df32" % LANES, _VEC, [_VEC] * 3), (a, b, c))
            return builder.fadd(builder.fmul(a, b), c)

        x = args[0]
        # clamped to where e ** x is a normal float (a NaN passes: the comparisons are false)
        xc = builder.select(builder.fcmp_ordered("<", x, const(_EXP_LO)), const(_EXP_LO), x)
        xc = builder.select(builder.fcmp_ordered(">", xc, const(_EXP_HI)), const(_EXP_HI), xc)
        rint_ = _llvm_function(builder, "llvm.rint.v%df32" % LANES, _VEC, [_VEC])
        n = builder.call(rint_, [builder.fmul(xc, const(1.4426950408889634))])  # -126 .. 128
        r = fma_(n, const(-_LN2_HI), xc)
        r = fma_(n, const(-_LN2_LO), r)
        p = const(_EXP_POLY[0])
        for c in _EXP_POLY[1:]:
            p = fma_(p, r, const(c))
        p = fma_(p, builder.fmul(r, r), builder.fadd(r, const(1.0)))
        # 2 ** n = 2 ** e * (n - e + 1) with e = min(n, 127): e + 127 in the exponent bits (a NaN's n: 0, so
        # that no lane converts a NaN to an integer)
        n = builder.select(builder.fcmp_ordered("==", n, n), n, const(0.0))
        e = builder.select(builder.fcmp_ordered(">", n, const(127.0)), const(127.0), n)
        ivec = ir.VectorType(_I32, LANES)
        bits = builder.shl(builder.add(builder.fptosi(e, ivec), ir.Constant(ivec, [127] * LANES)),
                           ir.Constant(ivec, [23] * LANES))
        p = builder.fmul(p, builder.fadd(builder.fsub(n, e), const(1.0)))
        y = builder.fmul(p, builder.bitcast(bits, _VEC))
        y = builder.select(builder.fcmp_ordered(">", x, const(_EXP_HI)), const(float("inf")), y)
        return builder.select(builder.fcmp_ordered("<", x, const(_EXP_LO)), const(0.0), y)
    return f32vec(v), codegen


@intrinsic
def neg(typingctx, v):
    if not _is_vec(v):
        return None

    def codegen(context, builder, sig, args):
        return builder.fsub(ir.Constant(_VEC, [-0.0] * LANES), args[0])
    return f32vec(v), codegen
