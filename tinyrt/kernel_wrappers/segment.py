"""Segments: runs of consecutive convs in a compiled program, executed by one compiled call.

A conv specialised for the program (``_ConvKernel.specialize``) costs a few microseconds of Python around
its kernel: the closure, the arrays it makes, and numba unboxing its fifteen arguments. On a small model
that is as much as the math (the demo classifier's 52 convs). So the program (tinyrt/program.py) asks
``find`` for runs of such convs (and the layers between them: pools, scalings, roundings) whose inputs
are made inside the run (or are its first input), and calls each run as one ``Segment``: kernels/segment.py's
``run`` walks a table of the layers and calls the same kernels with the same arguments, in compiled code.
A value made inside and read after the run too (each level of a detector's backbone, which its heads
read) stays in the run's arena, and the segment returns it with the last output. The same numbers: the
test suite's check mode holds every program to the step-by-step run, bit for bit.

A segment runs at the thread count its layers were specialised for (the program's first run); a run at
another (the default thread count chooses one run by run) runs its layers' own calls, one by one.
"""
from collections import Counter, namedtuple

import numpy as np

from ..graph import free_values
from .layout import empty_aligned, to_channels_last

# what a specialised conv tells a segment (``_ConvKernel.specialize``): its kernel ("pointwise",
# "depthwise", "im2col"), integer arguments, activation code and (a, b, qs), packed weights and bias, input
# and output shapes (N, H, W, C), whether it adds a residual, whether its blocks are shared by the run's
# threads, how many threads that run has, and which input the residual is (``z_at``). A QDQ model's
# rounding (eltwise.py's _QuantizeDequantizeKernel) is a layer too: kind "round", floats (low, high,
# scale), its addend (a residual Add folded in) at input 2. A squeeze-excite block's GlobalAveragePool
# ("gap") and scaling Mul ("scale": x at input ``x_at``, the scales at ``z_at``) are layers as well, and so
# are a ShuffleNet's channel shuffle ("shuffle": its two inputs at 0 and ``z_at`` = 1) and the channel
# slices that split its units ("slice": ints (the first channel,); kernel_wrappers/channels.py).
Layer = namedtuple("Layer", "kind ints act floats w bias x_shape y_shape has_z threaded threads z_at x_at",
                   defaults=(3, 0))
NO_WEIGHTS = np.zeros(1, np.float32)  # a layer without weights or bias (the table wants addresses)
_WHAT = {"gap": "pooling", "scale": "scaling", "round": "rounding", "shuffle": "shuffle",
         "slice": "channel slice"}  # a segment's layers that are not convs, in the order ``tinyrt code`` counts them

ALIGN = 16           # floats: every value in the arena starts on a 64-byte boundary
_READ_OUTSIDE = -1   # a reader that is not a step: the graph's outputs, a subgraph


class Segment:
    """Steps ``steps`` (indices, in order) of a plan: one call ``segment(X)`` -> the last step's output, or
    with ``exports`` (values made inside that steps after the segment read too: a detector's heads read
    each level of its backbone) the tuple of ``results``: the exports, then the last step's output."""

    def __init__(self, plan, steps, special, exports=()):
        self.backend = plan.steps[steps[0]].fn.backend  # (the conv wrappers': kernels loaded)
        self.ks = ks = self.backend.k.segment
        self.steps = steps
        self.calls = [special[i][0] for i in steps]
        self.wiring = [(tuple(plan.steps[i].inputs) + ("", "", ""))[:4] for i in steps]  # X, W, B, Z names
        self.weights_of = {name: plan.constants[name] for _, w, b, _ in self.wiring for name in (w, b)
                           if name in plan.constants}
        first, last = plan.steps[steps[0]], plan.steps[steps[-1]]
        self.input, self.output = first.inputs[0], last.outputs[0]
        self.outputs = {i: plan.steps[i].outputs[0] for i in steps}
        self.exports = list(exports)
        self.results = self.exports + [self.output]
        self.layers = [call.layer for call in self.calls]  # (their weights: the table has their addresses)
        counts = Counter(_WHAT.get(layer.kind, "conv") for layer in self.layers)
        self.op_type = ", ".join("%d %s%s" % (counts[what], what, "" if counts[what] == 1 else "s")
                                 for what in ("conv",) + tuple(_WHAT.values())
                                 if counts[what] or what == "conv")  # what ``tinyrt code`` says of it
        self.out_shape = self.layers[-1].y_shape
        self._table(plan, self.layers)
        self.width = self.layers[0].threads
        self.parallel = any(layer.threaded for layer in self.layers)
        self.ctrs = ks.control_blocks([layer.threaded for layer in self.layers], self.width)
        self.entry = None

    def _table(self, plan, layers):
        ks = self.ks
        table = np.zeros((len(layers), ks.COLUMNS), np.int64)
        params = np.zeros((len(layers), 3), np.float32)
        where = {self.input: (ks.XIN, 0)}   # value name -> (source, offset)
        last_read = {}
        for j, i in enumerate(self.steps):
            for name in _reads(plan.steps[i], layers[j]):
                last_read[name] = j
        arena = _Arena()
        for j, (i, layer) in enumerate(zip(self.steps, layers)):
            step, row = plan.steps[i], table[j]
            row[ks.KIND] = {"pointwise": ks.POINTWISE, "depthwise": ks.DEPTHWISE, "im2col": ks.IM2COL,
                            "round": ks.ROUND, "gap": ks.GAP, "scale": ks.SCALE, "shuffle": ks.SHUFFLE,
                            "slice": ks.SLICE}[layer.kind]
            row[ks.THREADED] = layer.threaded
            row[ks.X_SRC], row[ks.X_OFF] = where[step.inputs[layer.x_at]]
            row[ks.XN:ks.XC + 1] = layer.x_shape
            row[ks.Z_SRC], row[ks.Z_OFF] = where[step.inputs[layer.z_at]] if layer.has_z else (ks.NONE, 0)
            if j == len(layers) - 1:
                row[ks.Y_SRC], row[ks.Y_OFF] = ks.YOUT, 0
            else:
                where[step.outputs[0]] = (ks.ARENA, arena.take(int(np.prod(layer.y_shape))))
                row[ks.Y_SRC], row[ks.Y_OFF] = where[step.outputs[0]]
            # room read for the last time is free again, after the output took its own (a kernel reads its
            # input while it writes its output); an export's room never is (the caller gets a view of it)
            for name in _reads(step, layer):
                if last_read.get(name) == j and where.get(name, (None,))[0] == ks.ARENA and name not in self.exports:
                    arena.free(where.pop(name)[1])
            row[ks.YN:ks.YC + 1] = layer.y_shape
            row[ks.W_ADDR] = layer.w.ctypes.data  # (the arrays are kept alive by self.layers)
            row[ks.W0:ks.W0 + layer.w.ndim] = layer.w.shape
            row[ks.B_ADDR] = layer.bias.ctypes.data
            row[ks.B0:ks.B0 + layer.bias.ndim] = layer.bias.shape
            row[ks.ACT] = layer.act
            row[ks.I0:ks.I0 + len(layer.ints)] = layer.ints
            params[j] = layer.floats
        self.table, self.params, self.arena_size = table, params, max(arena.size, 1)
        y_shape = {plan.steps[i].outputs[0]: layer.y_shape for i, layer in zip(self.steps, layers)}
        self.export_at = [(where[name][1], y_shape[name]) for name in self.exports]  # (offset, NHWC shape)

    def __call__(self, X, *unused):
        if self.backend.threads != self.width:  # a run at another width: each layer's own call
            return self._one_by_one(X)
        x = to_channels_last(X).reshape(-1)
        y = empty_aligned(self.out_shape)
        arena = empty_aligned(self.arena_size)  # (its values' offsets are multiples of ALIGN too)
        args = (x, y.reshape(-1), arena, self.table, self.params, self.ctrs.copy())
        if self.entry is None:  # compiled (or loaded) for these types on the first call, then entered directly
            self.backend.pool.run(self.ks.run, args, self.parallel)
            self.entry = self.backend.pool.entry_point(self.ks.run, args)
        else:
            self.backend.pool.run(self.entry, args, self.parallel)
        if not self.exports:
            return y.transpose(0, 3, 1, 2)
        return tuple(arena[at:at + int(np.prod(shape))].reshape(shape).transpose(0, 3, 1, 2)
                     for at, shape in self.export_at) + (y.transpose(0, 3, 1, 2),)

    def _one_by_one(self, X):
        values = dict(self.weights_of)
        values[self.input] = X
        for (x, w, b, z), call, i in zip(self.wiring, self.calls, self.steps):
            if call.layer.kind in ("gap", "slice"):
                y = call(values[x])
            elif call.layer.kind in ("scale", "shuffle"):  # x and the scales; a shuffle's two inputs
                y = call(values[x], values[w])
            elif call.layer.z_at == 2:  # a rounding: x, scale, addend
                y = call(values[x], values[w], values[b] if call.layer.has_z else None)
            else:
                y = call(values[x], values[w], values.get(b), values[z] if call.layer.has_z else None)
            values[self.outputs[i]] = y
        return tuple(values[name] for name in self.results) if self.exports else y


class _Arena:
    """Offsets in one flat buffer for the values inside a segment: first fit, a freed value's room reused."""

    def __init__(self):
        self.used = {}  # offset -> size
        self.size = 0

    def take(self, n):
        n = -(-n // ALIGN) * ALIGN
        at = 0
        for offset in sorted(self.used):
            if offset - at >= n:
                break
            at = max(at, offset + self.used[offset])
        self.used[at] = n
        self.size = max(self.size, at + n)
        return at

    def free(self, offset):
        del self.used[offset]


def find(plan, special, folded=()):
    """{first step index: Segment} for the runs of ``special``'s layers (convs, roundings: the calls that
    carry a ``layer``, all made for one thread count) that can run as one call. ``folded``: steps that the
    program does not run (their results are constants of the signature, as a Slice's bounds worked out
    from a Shape): a run goes on over them, and their reading a value inside it does not count."""
    layers = {i: call.layer for i, (call, _) in special.items() if getattr(call, "layer", None) is not None}
    if len({layer.threads for layer in layers.values()}) > 1:
        return {}  # (a program's layers are specialised at one width)
    if len(layers) < 2:
        return {}
    readers = {}
    for i, step in enumerate(plan.steps):
        if i in folded:
            continue
        for name in step.inputs:
            readers.setdefault(name, set()).add(i)
        for name in free_values(step.node):
            readers.setdefault(name, set()).add(_READ_OUTSIDE)
    for name in plan.output_names:
        readers.setdefault(name, set()).add(_READ_OUTSIDE)
    found = {}
    for run in _runs(plan, layers, folded):
        if len(run) >= 2:
            members = set(run)  # what is made inside and read outside too: the segment returns it as well
            exports = [plan.steps[i].outputs[0] for i in run[:-1]
                       if not readers.get(plan.steps[i].outputs[0], set()) <= members]
            found[run[0]] = Segment(plan, run, special, exports)
    return found


def _runs(plan, layers, folded=()):
    """Runs of consecutive layer steps (but for ``folded`` ones between) whose inputs are the run's first
    input or made inside it."""
    runs, run, made = [], None, set()
    for i, step in enumerate(plan.steps):
        layer = layers.get(i)
        if layer is None:
            if i not in folded:
                run = None
            continue
        reads = _reads(step, layer)
        if run is not None and \
                all(name == plan.steps[run[0]].inputs[0] or name in made for name in reads):
            run.append(i)
        elif all(name == step.inputs[0] for name in reads):
            run, made = [i], set()
            runs.append(run)
        else:
            run = None
            continue
        made.add(step.outputs[0])
    return runs


def _reads(step, layer):
    """The values a layer reads: its input and its residual (or a rounding's addend, a scaling's scales)."""
    return [step.inputs[layer.x_at]] + ([step.inputs[layer.z_at]] if layer.has_z else [])
