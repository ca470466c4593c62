"""Resize's ``antialias`` (opset 18+, linear and cubic modes): Pillow's resampling, as onnxruntime does it.

Plain linear or cubic interpolation reads 2 or 4 input samples per output, so when downsampling by more
than 2 or 4 most input samples are skipped and fine detail aliases. With ``antialias`` the kernel is
stretched by ``1 / scale`` when downsampling (``scale < 1``): an output sample then averages every input
sample under its footprint, weighted by the kernel (a triangle for linear, Keys' cubic for cubic), and the
weights are renormalised to sum 1. When upsampling the kernel is the plain one. The taps come out in the
same ``(indices, weights)`` form as _resize_interp.py's, so the same ``apply_taps`` sums them; integer
results are rounded, not truncated (``to_dtype``).
"""
import numpy as np

from ._resize_interp import cubic_kernel, finish_taps, linear_kernel


def taps_antialias(x_orig, in_len, scale, mode, a, exclude_outside):
    """Pillow-style taps: the kernel stretched by 1/scale when downsampling, weights normalised to 1.

    The window is ``[floor(c - support + 0.5), floor(c + support + 0.5))`` around the sample centre
    ``c = x_original + 0.5``, as onnxruntime computes it; ``support`` is the kernel's half-width (1 for
    linear, 2 for cubic) times the stretch.
    """
    kernel, support = (linear_kernel, 1.0) if mode == "linear" else (cubic_kernel, 2.0)
    scale = float(scale)
    stretch = 1.0 / scale if scale < 1.0 else 1.0
    support = support * stretch
    taps = int(np.ceil(support)) * 2 + 1
    center = x_orig.astype(np.float64) + 0.5
    lo = np.floor(center - support + 0.5)
    hi = np.floor(center + support + 0.5)
    count = np.clip(hi - lo, 0, taps)
    k = np.arange(taps)
    j = lo[:, None] + k[None, :]
    w = kernel((j - center[:, None] + 0.5) / stretch, a) * (k[None, :] < count[:, None])
    return finish_taps(j, w, in_len, exclude_outside, normalise=True)
