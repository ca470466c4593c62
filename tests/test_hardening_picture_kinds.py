"""Issue 7 (hardening), item 4 (pictures): tinyrt.run(model, img) with every kind of picture a user may have.
Each either gives what Pillow + onnxruntime users get (the picture converted to RGB the way Pillow does), or
an InputError; broken pictures and decompression bombs are refused before decoding. Round two (FIFOs,
huge sizes, 16-bit pictures): test_hardening_pictures.py."""
import os

import numpy as np
import pytest

from hardening_models import traced
import tinyrt


# item 4 (pictures): tinyrt.run(model, img) with every kind of picture a user may have. Each either gives
# what Pillow + onnxruntime users get (the picture converted to RGB the way Pillow does), or an InputError.

PIL = pytest.importorskip("PIL.Image")
PICTURE_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boards", "models", "mmedu_mobilenet.onnx")


def _rgb(seed=0, size=(48, 64)):
    return np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)


def _answer(img):
    return [(r["label"], r["score"]) for r in tinyrt.run(PICTURE_MODEL, img, topk=5)]


def _on_white(rgba):
    """What BaseDT feeds for a transparent picture: each colour over white by its alpha, in float32, truncated."""
    a = rgba[:, :, 3:].astype(np.float32) / np.float32(255)
    return (rgba[:, :, :3] * a + (np.float32(1) - a) * np.float32(255)).astype(np.uint8)


def _picture_cases():
    rgb = _rgb()
    im = PIL.fromarray(rgb)
    gray = im.convert("L")
    rgba = im.convert("RGBA")
    rgba.putalpha(PIL.fromarray(_rgb(1)[:, :, 0]))
    palette = im.convert("P", palette=PIL.ADAPTIVE, colors=16)
    sixteen = PIL.fromarray(np.asarray(gray).astype(np.uint16) * 257)  # mode I;16
    cmyk = im.convert("CMYK")
    return {
        # name: (PIL image, file format, the RGB array Pillow users would feed onnxruntime)
        "rgb png": (im, "PNG", rgb),
        "grayscale": (gray, "PNG", np.asarray(gray.convert("RGB"))),
        "rgba (composited on white, as BaseDT does)": (rgba, "PNG", _on_white(np.asarray(rgba))),
        "palette": (palette, "PNG", np.asarray(palette.convert("RGB"))),
        "16-bit": (sixteen, "PNG", np.asarray(gray.convert("RGB"))),
        "cmyk": (cmyk, "TIFF", np.asarray(cmyk.convert("RGB"))),
    }


@pytest.mark.parametrize("case", sorted(_picture_cases()))
def test_pictures_of_every_kind(tmp_path, case):
    im, fmt, expected = _picture_cases()[case]
    path = tmp_path / ("p." + fmt.lower())
    im.save(str(path), format=fmt)
    assert _answer(str(path)) == _answer(expected)   # from the file
    assert _answer(im) == _answer(expected)          # from the PIL image


def test_broken_pictures_are_input_errors(tmp_path):
    good = tmp_path / "good.jpg"
    PIL.fromarray(_rgb(size=(120, 160))).save(str(good), quality=90)
    data = good.read_bytes()
    cases = {
        "zero-byte.jpg": b"",
        "truncated.jpg": data[:len(data) // 2],
        "corrupt.jpg": data[:200] + bytes(len(data) - 200),
        "not-an-image.jpg": b"%PDF-1.4 this is not a picture\n" * 20,
        "text.png": "hello".encode("utf-8"),
        "model.png": open(PICTURE_MODEL, "rb").read()[:4096],
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(tinyrt.InputError):
            tinyrt.run(PICTURE_MODEL, str(tmp_path / name))
    with pytest.raises(tinyrt.InputError, match="no such picture"):
        tinyrt.run(PICTURE_MODEL, str(tmp_path / "missing.jpg"))
    with pytest.raises(tinyrt.InputError):
        tinyrt.run(PICTURE_MODEL, np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(tinyrt.InputError):
        tinyrt.run(PICTURE_MODEL, np.zeros((4, 4, 3), np.float64))


def _png_header(width, height):
    """A small PNG whose header claims width x height pixels (the data is a few bytes)."""
    import struct
    import zlib

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width,height", [(10000, 10000), (60000, 60000)])
def test_decompression_bombs_are_refused_before_decoding(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(width, height))
    assert path.stat().st_size < 200
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own DecompressionBombWarning
        result, peak = traced(lambda: tinyrt.run(PICTURE_MODEL, str(path)))
    assert isinstance(result, tinyrt.InputError), result
    assert "pixels" in str(result)
    assert peak < 64 << 20
