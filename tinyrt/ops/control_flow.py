"""Control flow: If, Loop and Scan run subgraphs.

Graph attributes arrive as callables ``body(*inputs) -> list of arrays`` with the outer scope already
bound (see registry.py), so these ops only decide which subgraph runs, how often, and with what.

    If(cond):   then_branch() if cond else else_branch()
    Loop(M, cond, v...):
        i = 0; keep_going = cond (True when absent)
        while (M absent or i < M) and keep_going:
            keep_going', v..., s... = body(i, keep_going, v...)   # keep_going' is ignored without cond
            i += 1
        outputs: final v..., then every s stacked along a new axis 0
    Scan(state..., x...):  (opset 9+)
        for t over the scan axis of every x (reversed for direction 1):
            state..., y... = body(state..., x_1[t], x_2[t], ...)
        outputs: final state..., then every y stacked along its scan output axis (in reverse for
        output direction 1).
    Scan-8 has a leading batch axis on everything and an optional sequence_lens input; it runs the
    opset-9 loop once per batch entry.
"""
import numpy as np

from .. import limits
from ..errors import InputError, ModelError
from .registry import op


def _truth(v, op_name, what):
    a = np.asarray(v)
    if a.size != 1:
        raise InputError("%s: %s must hold exactly one element, got shape %s" % (op_name, what, a.shape))
    return bool(a.reshape(-1)[0])


def _stack(items, what):
    """Stack per-iteration values along a new axis 0."""
    if not items:
        # No iteration ran: the element shape is unknown. A float32 [0] tensor is the best guess.
        return np.zeros((0,), dtype=np.float32)
    try:
        return np.stack([np.asarray(v) for v in items], axis=0)
    except ValueError:
        raise InputError("%s: the iterations produced values of different shapes %s"
                         % (what, sorted(set(np.shape(v) for v in items))))


# ------------------------------------------------------------------------------------------------ If


@op("If", 1, 11, 13, 16, 19, 21, 23, 24, 25)  # 11: branch outputs may differ in shape; later: types
def if_1(cond, *, else_branch, then_branch):
    outs = then_branch() if _truth(cond, "If", "cond") else else_branch()
    return tuple(outs)


# ---------------------------------------------------------------------------------------------- Loop


@op("Loop", 1, 11, 13, 16, 19, 21, 23, 24, 25)  # 11: M and cond optional per spec text; later: types
def loop_1(M, cond, *v_initial, body, _num_outputs=1):
    n_carried = len(v_initial)
    n_scan = _num_outputs - n_carried
    if n_scan < 0:
        raise ModelError("Loop: %d loop-carried inputs but only %d outputs" % (n_carried, _num_outputs))
    trips = None if M is None else int(np.asarray(M).reshape(-1)[0])
    keep_going = True if cond is None else _truth(cond, "Loop", "cond")
    carried = list(v_initial)
    scans = [[] for _ in range(n_scan)]
    scanned = 0  # bytes held by the scan outputs so far: they are stacked into tensors at the end
    i = 0
    while (trips is None or i < trips) and keep_going:
        limits.spend(limits.ITERATION_COST, "Loop (iteration %d)" % i)  # a trip count from the file may be huge
        outs = list(body(np.array(i, dtype=np.int64), np.array(keep_going, dtype=np.bool_), *carried))
        if len(outs) != 1 + n_carried + n_scan:
            raise ModelError("Loop: the body returned %d values, expected 1 + %d carried + %d scan outputs"
                             % (len(outs), n_carried, n_scan))
        if cond is not None:  # without a cond input the body's condition output is ignored
            keep_going = _truth(outs[0], "Loop", "the body's condition output")
        carried = outs[1:1 + n_carried]
        for k in range(n_scan):
            scans[k].append(outs[1 + n_carried + k])
            scanned += limits.nbytes(outs[1 + n_carried + k])
        limits.check_count(scanned, 1, "Loop (scan outputs after %d iterations)" % (i + 1))
        i += 1
    return tuple(carried) + tuple(_stack(s, "Loop scan output %d" % k) for k, s in enumerate(scans))


# ---------------------------------------------------------------------------------------------- Scan


def _norm_axes(axes, count, ranks, op_name, what):
    axes = [0] * count if axes is None else [int(a) for a in axes]
    if len(axes) != count:
        raise ModelError("%s: %s has %d entries for %d tensors" % (op_name, what, len(axes), count))
    out = []
    for a, r in zip(axes, ranks):
        if not -r <= a < r:
            raise InputError("%s: %s entry %d is out of range for rank %d" % (op_name, what, a, r))
        out.append(a + r if a < 0 else a)
    return out


def _directions(dirs, count, op_name, what):
    dirs = [0] * count if dirs is None else [int(d) for d in dirs]
    if len(dirs) != count or any(d not in (0, 1) for d in dirs):
        raise ModelError("%s: %s must hold %d entries of 0 or 1, got %s" % (op_name, what, count, dirs))
    return dirs


def _scan(body, states, xs, in_axes, in_dirs, out_axes, out_dirs, n_out, length=None):
    """The opset-9 Scan loop. Scan inputs are already normalised: axes in range, directions known."""
    # iterate over axis 0 of every scan input; reverse direction is a reversed view
    seqs = []
    for x, a, d in zip(xs, in_axes, in_dirs):
        s = np.moveaxis(x, a, 0)
        seqs.append(s[::-1] if d else s)
    lengths = set(s.shape[0] for s in seqs)
    if len(lengths) > 1:
        raise InputError("Scan: scan inputs have different sequence lengths %s" % sorted(lengths))
    steps = lengths.pop() if lengths else 0
    if length is not None:
        steps = min(steps, length)
    n_state = len(states)
    states = list(states)
    ys = [[] for _ in range(n_out)]
    scanned = 0
    for t in range(steps):
        limits.spend(limits.ITERATION_COST, "Scan (iteration %d)" % t)
        outs = list(body(*(states + [s[t] for s in seqs])))
        if len(outs) != n_state + n_out:
            raise ModelError("Scan: the body returned %d values, expected %d states + %d scan outputs"
                             % (len(outs), n_state, n_out))
        states = outs[:n_state]
        for k in range(n_out):
            ys[k].append(outs[n_state + k])
            scanned += limits.nbytes(outs[n_state + k])
        limits.check_count(scanned, 1, "Scan (scan outputs after %d iterations)" % (t + 1))
    results = []
    for k in range(n_out):
        y = _stack(ys[k], "Scan output %d" % k)
        if out_dirs[k]:
            y = y[::-1]  # the first iteration's value goes last
        a = out_axes[k]
        if a < 0:
            a += y.ndim
        if not 0 <= a < max(y.ndim, 1):
            raise InputError("Scan: scan_output_axes entry %d is out of range for rank %d" % (out_axes[k], y.ndim))
        results.append(np.moveaxis(y, 0, a) if a else y)
    return states, results


@op("Scan", 9, 11, 16, 19, 21, 23, 24, 25)  # 9: no batch axis, per-input axes; 11: negative axes
def scan_9(*initial_state_and_scan_inputs, body, num_scan_inputs, scan_input_axes=None,
           scan_input_directions=None, scan_output_axes=None, scan_output_directions=None,
           _num_outputs=1):
    m = int(num_scan_inputs)
    args = list(initial_state_and_scan_inputs)
    if not 0 < m <= len(args):
        raise ModelError("Scan: num_scan_inputs=%d but the node has %d inputs" % (m, len(args)))
    states, xs = args[:len(args) - m], args[len(args) - m:]
    n_out = _num_outputs - len(states)
    if n_out < 0:
        raise ModelError("Scan: %d state inputs but only %d outputs" % (len(states), _num_outputs))
    in_axes = _norm_axes(scan_input_axes, m, [x.ndim for x in xs], "Scan", "scan_input_axes")
    in_dirs = _directions(scan_input_directions, m, "Scan", "scan_input_directions")
    # output axes are checked against the stacked outputs' rank, once it is known
    out_axes = [0] * n_out if scan_output_axes is None else [int(a) for a in scan_output_axes]
    if len(out_axes) != n_out:
        raise ModelError("Scan: scan_output_axes has %d entries for %d scan outputs" % (len(out_axes), n_out))
    out_dirs = _directions(scan_output_directions, n_out, "Scan", "scan_output_directions")
    states, ys = _scan(body, states, xs, in_axes, in_dirs, out_axes, out_dirs, n_out)
    return tuple(states) + tuple(ys)


@op("Scan", 8)
def scan_8(sequence_lens, *initial_state_and_scan_inputs, body, num_scan_inputs, directions=None,
           _num_outputs=1):
    # Everything has a batch axis 0; scan inputs are [batch, sequence, ...]. Each batch entry runs on its
    # own, for sequence_lens[b] steps; scan outputs past that length are zero, as onnxruntime does.
    m = int(num_scan_inputs)
    args = list(initial_state_and_scan_inputs)
    if not 0 < m <= len(args):
        raise ModelError("Scan: num_scan_inputs=%d but the node has %d inputs" % (m, len(args)))
    states, xs = args[:len(args) - m], args[len(args) - m:]
    n_out = _num_outputs - len(states)
    dirs = _directions(directions, m, "Scan", "directions")
    batch = xs[0].shape[0]
    seq = xs[0].shape[1]
    lens = [seq] * batch if sequence_lens is None else [int(v) for v in np.asarray(sequence_lens).reshape(-1)]
    if len(lens) != batch or any(not 0 <= n <= seq for n in lens):
        raise InputError("Scan: sequence_lens %s do not fit batch %d and sequence length %d" % (lens, batch, seq))
    final = [[] for _ in states]
    outs = [[] for _ in range(n_out)]
    for b in range(batch):
        # a shorter sequence in reverse starts at its own last element, not at the padded end
        xb = [x[b, :lens[b]] for x in xs]
        st, ys = _scan(body, [s[b] for s in states], xb, [0] * m, dirs, [0] * n_out, [0] * n_out, n_out)
        for k, s in enumerate(st):
            final[k].append(s)
        for k, y in enumerate(ys):
            if lens[b] < seq:
                if lens[b] == 0:
                    raise InputError("Scan: a sequence length of 0 leaves the output shape unknown")
                pad = np.zeros((seq - lens[b],) + y.shape[1:], dtype=y.dtype)
                y = np.concatenate([y, pad], axis=0)
            outs[k].append(y)
    return tuple(np.stack(f, axis=0) for f in final) + tuple(np.stack(o, axis=0) for o in outs)
