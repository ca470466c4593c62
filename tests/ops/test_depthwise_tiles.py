"""The numpy path's depthwise einsum in tiles of T pixels (ops/_depthwise.py ``tile_pixels``).

Its weights are tiled over T pixels of a row, T a divisor of the row's width with about ``INNER`` values a
tile. Here: T divides the width and comes near INNER, a huge width from a file does not make a long loop,
the tiled weights are C-contiguous (an einsum over strided ones ran 10x slower), and depthwise convs of
every width (prime ones, a single pixel) and channel count give a plain per-tap sum's numbers.
"""
import time

import numpy as np
import pytest

from tinyrt.ops import _depthwise as D
from tinyrt.ops.conv import conv


@pytest.mark.parametrize("width, channels", [(80, 72), (160, 16), (40, 120), (20, 672), (7, 960), (13, 8),
                                             (1, 3), (112, 32)])
def test_a_tile_divides_the_row_and_holds_about_inner_values(width, channels):
    T = D.tile_pixels(width, channels)
    assert width % T == 0
    divisors = [t for t in range(1, width + 1) if width % t == 0]
    off = abs(np.log(T * channels / D.INNER))
    assert all(off <= abs(np.log(t * channels / D.INNER)) + 1e-12 for t in divisors)  # the nearest there is


def test_a_huge_width_is_not_a_long_loop():
    start = time.perf_counter()
    assert D.tile_pixels(2 ** 40, 3) == 256 and D.tile_pixels(0, 5) == 1
    assert D.tile_pixels(1000003, 1) in (1, 1000003)  # a prime: one pixel or the whole row
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("width, channels", [(20, 672), (7, 960), (80, 72)])
def test_the_tiled_weights_are_contiguous(width, channels):
    w = np.random.RandomState(0).standard_normal((channels, 1, 3, 3)).astype(np.float32)
    tiled = D.tile_depthwise(w, width)
    T = D.tile_pixels(width, channels)
    assert tiled.flags.c_contiguous and tiled.shape == (3, 3, T * channels)
    np.testing.assert_array_equal(tiled.reshape(3, 3, T, channels), np.broadcast_to(
        w[:, 0].transpose(1, 2, 0)[:, :, None], (3, 3, T, channels)))


def _per_tap(x, w, b, stride, pad):
    """The depthwise conv as a plain sum over taps, in float64."""
    N, C, H, W = x.shape
    k = w.shape[2]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    y = np.zeros((N, C, OH, OW)) + b.reshape(1, C, 1, 1)
    for i in range(k):
        for j in range(k):
            y += xp[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride] * w[:, 0, i, j].reshape(1, C, 1, 1)
    return y


@pytest.mark.parametrize("width", [1, 7, 13, 20, 56])
@pytest.mark.parametrize("channels", [1, 16, 72, 960])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_convs_of_every_width_give_the_per_tap_sums(width, channels, stride):
    rng = np.random.RandomState(width * 1000 + channels)
    x = rng.standard_normal((2, channels, 9, width)).astype(np.float32)
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last memory, as a conv's
    w = rng.standard_normal((channels, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(channels).astype(np.float32)
    got = conv(x, w, b, group=channels, pads=[1, 1, 1, 1], strides=[stride, stride])
    want = _per_tap(x, w, b, stride, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
