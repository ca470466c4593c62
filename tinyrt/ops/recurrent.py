"""Recurrent layers: RNN, GRU and LSTM, one time step at a time.

Shapes (layout=0; layout=1 swaps the first two axes of X, Y, initial and final states, as batch_first):
    X (seq, batch, input)    W (dirs, gates * hidden, input)    R (dirs, gates * hidden, hidden)
    B (dirs, 2 * gates * hidden) = [Wb, Rb]    sequence_lens (batch,)    initial_h, initial_c (dirs, batch, hidden)
    Y (seq, dirs, batch, hidden): every step's H      Y_h, Y_c (dirs, batch, hidden): the last step's H, C
``direction`` is forward, reverse or bidirectional (dirs = 2: forward then reverse). With sequence_lens,
batch b runs only its first sequence_lens[b] steps (reverse: from step sequence_lens[b] - 1 down to 0);
Y is zero past them and Y_h / Y_c are the states after them (zero for a length of 0, as onnxruntime gives).

Per step, with x = X[t] and H, C the previous states (``@ W.T`` over the gate's rows of W, R, Wb, Rb):
    RNN    H = f(x Wi + H Ri + Wbi + Rbi)                                  f default Tanh
    GRU    z = f(x Wz + H Rz + Wbz + Rbz)        r = f(x Wr + H Rr + Wbr + Rbr)     (gate order z, r, h)
           h = g(x Wh + (r * H) Rh + Rbh + Wbh)          linear_before_reset = 0
           h = g(x Wh + r * (H Rh + Rbh) + Wbh)          linear_before_reset = 1
           H = (1 - z) * h + z * H                       f, g default Sigmoid, Tanh
    LSTM   i = f(x Wi + H Ri + Pi * C + Wbi + Rbi)       f = f(x Wf + H Rf + Pf * C + Wbf + Rbf)   (order i, o, f, c)
           c = g(x Wc + H Rc + Wbc + Rbc)                C = f * C + i * c
           o = f(x Wo + H Ro + Po * C + Wbo + Rbo)       H = o * h(C)      f, g, h default Sigmoid, Tanh, Tanh
           P = [Pi, Po, Pf] are the peepholes; input_forget=1 couples the gates: f = 1 - i.
``clip`` bounds every gate's input to [-clip, clip] before its activation. ``activations`` lists the
functions per direction (f, g[, h]; twice when bidirectional); ``activation_alpha`` / ``activation_beta``
are consumed in that order by the functions that take them, with the ONNX defaults when they run out
(onnxruntime's reading). The input products x W of all steps are one matmul before the loop.
"""
import numpy as np

from ..errors import InputError, ModelError, UnsupportedError
from .registry import op


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1)  # = 1 / (1 + exp(-x)), without overflow for large |x|


# name (lower case) -> (number of alphas, number of betas, default alpha, default beta, function)
ACTIVATIONS = {
    "sigmoid": (0, 0, 0.0, 0.0, lambda x, a, b: _sigmoid(x)),
    "tanh": (0, 0, 0.0, 0.0, lambda x, a, b: np.tanh(x)),
    "relu": (0, 0, 0.0, 0.0, lambda x, a, b: np.maximum(x, 0)),
    "affine": (1, 1, 1.0, 0.0, lambda x, a, b: a * x + b),
    "leakyrelu": (1, 0, 0.01, 0.0, lambda x, a, b: np.where(x >= 0, x, a * x)),
    "thresholdedrelu": (1, 0, 1.0, 0.0, lambda x, a, b: np.where(x > a, x, 0)),
    "scaledtanh": (1, 1, 1.0, 1.0, lambda x, a, b: a * np.tanh(b * x)),
    "hardsigmoid": (1, 1, 0.2, 0.5, lambda x, a, b: np.clip(a * x + b, 0, 1)),
    "elu": (1, 0, 1.0, 0.0, lambda x, a, b: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1))),
    "softsign": (0, 0, 0.0, 0.0, lambda x, a, b: x / (1 + np.abs(x))),
    "softplus": (0, 0, 0.0, 0.0, lambda x, a, b: np.logaddexp(0, x)),
}
DIRECTIONS = ("forward", "reverse", "bidirectional")


def _activations(names, alphas, betas, defaults, num_dirs, op_type):
    """One list of functions per direction, each x -> f(x) with its alpha and beta bound."""
    names = list(names) if names else defaults * num_dirs
    if len(names) != len(defaults) * num_dirs:
        raise ModelError("%s: activations %s: expected %d names (%d per direction)"
                         % (op_type, names, len(defaults) * num_dirs, len(defaults)))
    alphas, betas = list(alphas or []), list(betas or [])
    funcs = []
    for name in names:
        key = name.lower()
        if key not in ACTIVATIONS:
            raise UnsupportedError("%s: activation %r is not one of %s" % (op_type, name, sorted(ACTIVATIONS)))
        n_alpha, n_beta, alpha, beta, fn = ACTIVATIONS[key]
        if n_alpha and alphas:
            alpha = alphas.pop(0)
        if n_beta and betas:
            beta = betas.pop(0)
        funcs.append(lambda x, fn=fn, a=alpha, b=beta: fn(x, x.dtype.type(a), x.dtype.type(b)))
    n = len(defaults)
    return [funcs[d * n:(d + 1) * n] for d in range(num_dirs)]


def _check(defaults, op_type):
    def check(**attrs):
        direction = attrs.get("direction", "forward")
        if direction not in DIRECTIONS:
            raise UnsupportedError("%s: direction=%r is not one of %s" % (op_type, direction, DIRECTIONS))
        if attrs.get("layout", 0) not in (0, 1):
            raise UnsupportedError("%s: layout=%r must be 0 or 1" % (op_type, attrs.get("layout")))
        _activations(attrs.get("activations"), attrs.get("activation_alpha"), attrs.get("activation_beta"),
                     defaults, 2 if direction == "bidirectional" else 1, op_type)
    return check


def _reverse_within(x, lens):
    """x (seq, batch, ...) with each batch's first lens[b] steps in reverse order (the rest as they are)."""
    seq = x.shape[0]
    t = np.arange(seq)[:, None]
    src = np.where(t < lens[None, :], lens[None, :] - 1 - t, t)   # (seq, batch)
    return x[src, np.arange(x.shape[1])[None, :]]


class _Inputs:
    """The common inputs, checked and in layout 0, for one op call."""

    def __init__(self, op_type, gates, X, W, R, B, sequence_lens, states, direction, layout, hidden_size):
        if X.ndim != 3 or W.ndim != 3 or R.ndim != 3:
            raise InputError("%s: X, W, R must be 3-D, got %s, %s, %s" % (op_type, X.shape, W.shape, R.shape))
        self.dtype = X.dtype
        ct = np.float32 if X.dtype == np.float16 else X.dtype
        self.X = (X.transpose(1, 0, 2) if layout else X).astype(ct, copy=False)
        self.layout = layout
        seq, batch, size = self.X.shape
        self.dirs = 2 if direction == "bidirectional" else 1
        H = R.shape[-1]
        if hidden_size is not None and hidden_size != H:
            raise InputError("%s: hidden_size=%d but R has shape %s" % (op_type, hidden_size, R.shape))
        if W.shape != (self.dirs, gates * H, size) or R.shape != (self.dirs, gates * H, H):
            raise InputError("%s: W %s and R %s do not fit X %s with %d direction(s), hidden size %d"
                             % (op_type, W.shape, R.shape, X.shape, self.dirs, H))
        self.W, self.R, self.H = W.astype(ct, copy=False), R.astype(ct, copy=False), H
        if B is None:
            B = np.zeros((self.dirs, 2 * gates * H), ct)
        if B.shape != (self.dirs, 2 * gates * H):
            raise InputError("%s: B has shape %s, expected %s" % (op_type, B.shape, (self.dirs, 2 * gates * H)))
        self.B = B.astype(ct, copy=False)
        if sequence_lens is None:
            self.lens = np.full(batch, seq, np.int64)
        else:
            self.lens = np.asarray(sequence_lens).astype(np.int64).reshape(-1)
            if self.lens.shape != (batch,) or (self.lens < 0).any() or (self.lens > seq).any():
                raise InputError("%s: sequence_lens %s must hold one length in [0, %d] per batch (%d)"
                                 % (op_type, self.lens.tolist(), seq, batch))
        self.states = []
        for name, s in states:
            if s is None:
                s = np.zeros((self.dirs, batch, H), ct)
            elif layout:
                s = s.transpose(1, 0, 2)
            if s.shape != (self.dirs, batch, H):
                raise InputError("%s: %s has shape %s, expected %s (layout %d)"
                                 % (op_type, name, s.shape, (self.dirs, batch, H), layout))
            self.states.append(s.astype(ct, copy=False))

    def steps(self, d, reverse):
        """x W + Wb + Rb of every step of direction d: (seq, batch, gates * hidden), in processing order."""
        G = self.W.shape[1]
        xw = self.X @ self.W[d].T + self.B[d, :G] + self.B[d, G:]
        return _reverse_within(xw, self.lens) if reverse else xw

    def outputs(self, ys, finals, num_outputs):
        """Y (every step) and the final states, from per-direction lists, in the op's layout."""
        Y = np.stack(ys, 1)                                         # (seq, dirs, batch, hidden)
        outs = [Y.transpose(2, 0, 1, 3) if self.layout else Y]
        for f in finals:
            s = np.stack(f, 0)
            outs.append(s.transpose(1, 0, 2) if self.layout else s)
        return tuple(o.astype(self.dtype, copy=False) for o in outs[:max(num_outputs, 1)])


def _loop(inputs, cell, states, reverse, xw):
    """Run ``cell(xw_t, *states) -> new states`` over the steps; Y is the first state, 0 past each length."""
    seq = xw.shape[0]
    ys = np.zeros((seq,) + states[0].shape, states[0].dtype)
    for t in range(seq):
        live = (t < inputs.lens)[:, None]                           # batches still inside their sequence
        new = cell(xw[t], *states)
        states = [np.where(live, n, s) for n, s in zip(new, states)]
        ys[t] = np.where(live, states[0], 0)
    if reverse:
        ys = _reverse_within(ys, inputs.lens)
    empty = (inputs.lens == 0)[:, None]  # onnxruntime: a batch with no steps ends with zero states
    return ys, [np.where(empty, 0, s) for s in states]


def _directions(direction, dirs):
    return [direction == "reverse" or d == 1 for d in range(dirs)]


def _clipper(clip):
    if clip is None:
        return lambda x: x
    return lambda x: np.clip(x, -clip, clip)


# --- RNN ----------------------------------------------------------------------------------------------------

_RNN_DEFAULTS = ["Tanh"]


# 7 dropped output_sequence; 14 added layout; 22 bfloat16 (the same for GRU and LSTM)
@op("RNN", 7, 14, 22, check=_check(_RNN_DEFAULTS, "RNN"))
def rnn(X, W, R, B=None, sequence_lens=None, initial_h=None, *, activation_alpha=None, activation_beta=None,
        activations=None, clip=None, direction="forward", hidden_size=None, layout=0, _num_outputs=2):
    inp = _Inputs("RNN", 1, X, W, R, B, sequence_lens, [("initial_h", initial_h)], direction, layout, hidden_size)
    funcs = _activations(activations, activation_alpha, activation_beta, _RNN_DEFAULTS, inp.dirs, "RNN")
    clipped = _clipper(clip)
    ys, hs = [], []
    for d, reverse in enumerate(_directions(direction, inp.dirs)):
        f, Rt = funcs[d][0], inp.R[d].T

        def cell(xw, h):
            return [f(clipped(xw + h @ Rt))]
        y, (h,) = _loop(inp, cell, [inp.states[0][d]], reverse, inp.steps(d, reverse))
        ys.append(y)
        hs.append(h)
    return inp.outputs(ys, [hs], _num_outputs)


# --- GRU ----------------------------------------------------------------------------------------------------

_GRU_DEFAULTS = ["Sigmoid", "Tanh"]


@op("GRU", 7, 14, 22, check=_check(_GRU_DEFAULTS, "GRU"))
def gru(X, W, R, B=None, sequence_lens=None, initial_h=None, *, activation_alpha=None, activation_beta=None,
        activations=None, clip=None, direction="forward", hidden_size=None, layout=0, linear_before_reset=0,
        _num_outputs=2):
    inp = _Inputs("GRU", 3, X, W, R, B, sequence_lens, [("initial_h", initial_h)], direction, layout, hidden_size)
    funcs = _activations(activations, activation_alpha, activation_beta, _GRU_DEFAULTS, inp.dirs, "GRU")
    clipped = _clipper(clip)
    Hn = inp.H
    ys, hs = [], []
    for d, reverse in enumerate(_directions(direction, inp.dirs)):
        f, g = funcs[d]
        R_zr, R_h = inp.R[d, :2 * Hn].T, inp.R[d, 2 * Hn:].T
        Rb_h = inp.B[d, 5 * Hn:]  # the recurrence bias of the h gate (inside the reset when linear_before_reset)
        # steps() added Wb + Rb to every gate; the h gate's Rb is taken back out and placed per the formula
        xw = inp.steps(d, reverse) - np.concatenate([np.zeros(2 * Hn, Rb_h.dtype), Rb_h])

        def cell(xw_t, h):
            zr = f(clipped(xw_t[:, :2 * Hn] + h @ R_zr))
            z, r = zr[:, :Hn], zr[:, Hn:]
            if linear_before_reset:
                hh = g(clipped(xw_t[:, 2 * Hn:] + r * (h @ R_h + Rb_h)))
            else:
                hh = g(clipped(xw_t[:, 2 * Hn:] + (r * h) @ R_h + Rb_h))
            return [(1 - z) * hh + z * h]
        y, (h,) = _loop(inp, cell, [inp.states[0][d]], reverse, xw)
        ys.append(y)
        hs.append(h)
    return inp.outputs(ys, [hs], _num_outputs)


# --- LSTM ---------------------------------------------------------------------------------------------------

_LSTM_DEFAULTS = ["Sigmoid", "Tanh", "Tanh"]


@op("LSTM", 7, 14, 22, check=_check(_LSTM_DEFAULTS, "LSTM"))
def lstm(X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None, *, activation_alpha=None,
         activation_beta=None, activations=None, clip=None, direction="forward", hidden_size=None, input_forget=0,
         layout=0, _num_outputs=3):
    inp = _Inputs("LSTM", 4, X, W, R, B, sequence_lens, [("initial_h", initial_h), ("initial_c", initial_c)],
                  direction, layout, hidden_size)
    funcs = _activations(activations, activation_alpha, activation_beta, _LSTM_DEFAULTS, inp.dirs, "LSTM")
    clipped = _clipper(clip)
    Hn = inp.H
    if P is not None and P.shape != (inp.dirs, 3 * Hn):
        raise InputError("LSTM: P has shape %s, expected %s" % (P.shape, (inp.dirs, 3 * Hn)))
    ys, hs, cs = [], [], []
    for d, reverse in enumerate(_directions(direction, inp.dirs)):
        f, g, h_act = funcs[d]
        Rt = inp.R[d].T
        pi, po, pf = (P[d].astype(Rt.dtype).reshape(3, Hn) if P is not None else np.zeros((3, Hn), Rt.dtype))

        def cell(xw_t, h, c):
            gates = xw_t + h @ Rt
            i = f(clipped(gates[:, :Hn] + pi * c))
            if input_forget:
                forget = 1 - i
            else:
                forget = f(clipped(gates[:, 2 * Hn:3 * Hn] + pf * c))
            c_new = forget * c + i * g(clipped(gates[:, 3 * Hn:]))
            o = f(clipped(gates[:, Hn:2 * Hn] + po * c_new))
            return [o * h_act(c_new), c_new]
        y, (h, c) = _loop(inp, cell, [inp.states[0][d], inp.states[1][d]], reverse, inp.steps(d, reverse))
        ys.append(y)
        hs.append(h)
        cs.append(c)
    return inp.outputs(ys, [hs, cs], _num_outputs)
