"""Issue 21 (hardening, round two), pictures and the files around them: items 9 (a FIFO as a picture, a
checkpoint or a classes file blocked for ever), 13 (sizes that made pictures take gigabytes: resize
[40000, 40000], a 2,000,000 x 1 PNG with resize_policy='shorter', a 7999x7999 16-bit PNG, a lazily opened
PIL image, /dev/zero as checkpoint or classes file, a zip bomb as checkpoint), 16 (hostile metadata raised
RecursionError, AttributeError, TypeError, ValueError). Each attack that could hang or eat memory runs in a
child process under a time and memory limit."""
import json
import os
import warnings

import numpy as np
import onnx
import pytest

import tinyrt
from bounded import check_bounded
from oracle import needs_torch

PIL = pytest.importorskip("PIL.Image")
MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tinyrt", "data",
                     "default_classifier.onnx")
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def with_metadata(tmp_path, base=None, **props):
    m = base or onnx.load(MODEL)
    for key, value in props.items():
        key = key.replace("__", ".")
        for p in m.metadata_props:
            if p.key == key:
                p.value = value
                break
        else:
            m.metadata_props.add(key=key, value=value)
    path = str(tmp_path / "m.onnx")
    onnx.save(m, path)
    return path


def picture(tmp_path, name="p.png", size=(40, 50)):
    path = str(tmp_path / name)
    PIL.fromarray(np.random.default_rng(0).integers(0, 256, size + (3,), dtype=np.uint8)).save(path)
    return path


# --- item 9: FIFOs -----------------------------------------------------------------------------------------------

@needs_fifo
@pytest.mark.parametrize("what", ["picture (API)", "picture (CLI)", "classes file", "checkpoint",
                                  "exporter class file"])
def test_a_fifo_is_refused_at_once(tmp_path, what):
    if what == "checkpoint":
        needs_torch()
    fifo = str(tmp_path / ("thing.txt" if "class" in what else "thing.pth" if "checkpoint" in what else "p.jpg"))
    os.mkfifo(fifo)
    calls = {
        "picture (API)": "tinyrt.run(%r, %r)" % (MODEL, fifo),
        "picture (CLI)": "sys.exit(0 if main(['run', %r, %r]) == 2 else 5)" % (MODEL, fifo),
        "classes file": "tinyrt.load(%r, classes=%r)" % (MODEL, fifo),
        "checkpoint": "exporter.convert('LeNet', checkpoint=%r, out_file=%r, log=None)" % (fifo, str(tmp_path / "o.onnx")),
        "exporter class file": "exporter.classes.read_class_file(%r)" % fifo,
    }
    check_bounded("""
        import sys, tinyrt
        from tinyrt.cli import main
        errors = (tinyrt.TinyrtError,)
        if %r in ("checkpoint", "exporter class file"):
            import exporter, exporter.classes
            from exporter.errors import ExporterError
            errors = (ExporterError,)
        try:
            %s
        except errors as e:
            assert "FIFO" in str(e) or "regular" in str(e), e
        else:
            assert %r == "picture (CLI)" or %r == "classes file", "accepted"
        """ % (what, calls[what], what, what), timeout=120, memory_mb=2048)


# --- item 13: sizes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("resize", ["[40000, 40000]", "[-5, -5]", "[0, 10]", "[1e400, 3]", "\"big\""])
def test_a_hostile_resize_in_the_metadata_is_an_input_error(tmp_path, resize):
    meta = json.dumps({"color": "RGB", "resize": "@", "crop": [96, 96], "mean": [0, 0, 0], "std": [1, 1, 1]})
    path = with_metadata(tmp_path, tinyrt__preprocess=meta.replace('"@"', resize))
    check_bounded("""
        import tinyrt
        try:
            tinyrt.run(%r, %r)
            raise SystemExit("ran")
        except tinyrt.InputError as e:
            assert "resize" in str(e), e
        """ % (path, picture(tmp_path)), timeout=60, memory_mb=1024)


def test_a_very_long_picture_with_resize_policy_shorter(tmp_path):
    path = str(tmp_path / "long.png")
    PIL.new("L", (2000000, 1)).save(path)
    check_bounded("""
        import tinyrt
        try:
            tinyrt.run(%r, %r, resize_policy="shorter")
            raise SystemExit("ran")
        except tinyrt.InputError as e:
            assert "shorter" in str(e), e
        """ % (MODEL, path), timeout=60, memory_mb=1024)


def _sixteen_bit_png(path, side):
    """A side x side 16-bit grayscale PNG of a smooth ramp (compresses to a small file), written in rows."""
    import struct
    import zlib
    row = np.linspace(0, 65535, side).astype(">u2").tobytes()
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(b"\0" + row) for _ in range(side)) + comp.flush()

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0))
                + chunk(b"IDAT", data) + chunk(b"IEND", b""))


@pytest.mark.slow
def test_a_big_16_bit_png_stays_within_memory(tmp_path):
    path = str(tmp_path / "sixteen.png")
    _sixteen_bit_png(path, 7999)  # 64 megapixels of 16 bits: took 1.7 GB; a Pi has 1 GB
    out = check_bounded("""
        import tinyrt

        def peak_kib():  # this image's peak (VmHWM): ru_maxrss carries over the forked pytest process's
            return [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
        try:
            r = tinyrt.run(%r, %r)
            print("ran", peak_kib())
        except tinyrt.InputError as e:
            print("refused", peak_kib())
        """ % (MODEL, path), timeout=240, memory_mb=1536)
    outcome, rss_kib = out.split()
    assert int(rss_kib) < 900 << 10, out  # within a 1 GB board, tinyrt and numpy included


def test_16_bit_pictures_are_scaled_like_before(tmp_path):
    a = np.arange(0, 65536, 7, dtype=np.uint16)[:8000].reshape(80, 100)
    im = PIL.fromarray(a)
    from tinyrt.vision.image import read_image
    got = read_image(im)
    np.testing.assert_array_equal(got[:, :, 0], np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8))


def test_a_lazily_opened_pil_image_is_checked_before_decoding(tmp_path):
    path = str(tmp_path / "bomb.png")
    PIL.new("L", (9000, 9000)).save(path)  # 81 megapixels of zeros: a small file
    check_bounded("""
        import tinyrt, warnings
        from PIL import Image
        warnings.simplefilter("ignore")
        Image.MAX_IMAGE_PIXELS = None
        im = Image.open(%r)
        try:
            tinyrt.run(%r, im)
            raise SystemExit("ran")
        except tinyrt.InputError as e:
            assert "megapixels" in str(e), e
        """ % (path, MODEL), timeout=60, memory_mb=1024)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.parametrize("what", ["classes file", "checkpoint", "exporter class file"])
def test_dev_zero_is_refused_at_once(tmp_path, what):
    if what == "checkpoint":
        needs_torch()
    calls = {
        "classes file": "tinyrt.load(%r, classes='/dev/zero')" % MODEL,
        "checkpoint": "exporter.convert('LeNet', checkpoint='/dev/zero', out_file=%r, log=None)" % str(tmp_path / "o.onnx"),
        "exporter class file": "exporter.classes.read_class_file('/dev/zero')",
    }
    check_bounded("""
        import tinyrt
        errors = (tinyrt.TinyrtError,)
        if %r != "classes file":
            import exporter, exporter.classes
            from exporter.errors import ExporterError
            errors = (ExporterError,)
        try:
            %s
        except errors as e:
            assert "not a regular file" in str(e), e
        """ % (what, calls[what]), timeout=120, memory_mb=2048)


def test_a_deflated_checkpoint_bomb_is_refused_before_loading(tmp_path):
    needs_torch()
    import zipfile
    path = str(tmp_path / "bomb.pth")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("archive/data/0", "w") as f:  # 256 MB of zeros: about 250 KB deflated
            block = bytes(1 << 20)
            for _ in range(256):
                f.write(block)
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    assert os.path.getsize(path) < 2 << 20
    check_bounded("""
        import exporter
        from exporter.errors import CheckpointError
        try:
            exporter.convert("LeNet", checkpoint=%r, out_file=%r, log=None)
            raise SystemExit("converted")
        except CheckpointError as e:
            assert "decompression bomb" in str(e), e
        """ % (path, str(tmp_path / "o.onnx")), timeout=120, memory_mb=2048)


# --- item 16: hostile metadata ----------------------------------------------------------------------------------

HOSTILE_METADATA = {
    "deeply nested JSON": {"tinyrt__preprocess": "[" * 100000 + "]" * 100000},
    "preprocess a list": {"tinyrt__preprocess": "[1, 2]"},
    "classes a number": {"tinyrt__classes": "5"},
    "classes a dict": {"tinyrt__classes": "{\"a\": 1}"},
    "MODEL_INFO garbage": {"tinyrt__preprocess": "", "MODEL_INFO": "[[[\"x\"]]]"},
    "MODEL_INFO classes a string": {"tinyrt__preprocess": "", "MODEL_INFO": "{\"codebase\": 5, \"classes\": \"ab\"}"},
    "postprocess a string": {"tinyrt__postprocess": "\"softmax\""},
}


@pytest.mark.parametrize("case", sorted(HOSTILE_METADATA))
def test_hostile_metadata_is_a_warning_or_an_input_error(tmp_path, case):
    props = dict(HOSTILE_METADATA[case])
    m = onnx.load(MODEL)
    if props.get("tinyrt__preprocess") == "":  # drop tinyrt's keys: MODEL_INFO is what is read
        keep = [p for p in m.metadata_props if not p.key.startswith("tinyrt.")]
        del m.metadata_props[:]
        m.metadata_props.extend(keep)
        props.pop("tinyrt__preprocess")
    path = with_metadata(tmp_path, m, **props)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            result = tinyrt.run(path, np.zeros((40, 50, 3), np.uint8))
        except tinyrt.InputError as e:
            assert str(e)
        else:
            assert len(result) == 1 and isinstance(result[0]["name"], str)


def test_bad_classes_arguments_are_input_errors():
    with pytest.raises(tinyrt.InputError, match="classes="):
        tinyrt.load(MODEL, classes=5)
