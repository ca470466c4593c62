"""Pictures in: a file, a folder, a PIL image or a numpy array, always out as RGB uint8 HxWx3.

Pillow is imported only here and only when a picture needs it (``import tinyrt`` never imports it). Without
Pillow, numpy arrays still work; a file path gives an error that says how to install Pillow.

What a picture becomes (what MMEdu users get from OpenCV's ``cv2.imread(path, IMREAD_COLOR)``):

* EXIF orientation is applied first (a phone photo taken upright is upright);
* grayscale (``L``, ``1``) is copied into the three channels;
* RGBA / LA / palette with transparency: the alpha channel is **dropped** (as OpenCV drops it), so the
  colour under transparent pixels shows (often black); pass ``background=(255, 255, 255)`` to
  ``read_image`` to composite on white instead;
* 16-bit (``I;16``, ``I``) is scaled to 8 bits (``value / 257``, rounded), 32-bit float (``F``) clipped to
  0..255; CMYK, YCbCr, LAB, HSV are converted by Pillow;
* pictures larger than ``MAX_PIXELS`` are refused before decoding (a "decompression bomb" is a small file
  that decodes into gigabytes).
"""
import os

import numpy as np

from ..errors import InputError
from ..files import open_regular

MAX_PIXELS = 64 * 1000 * 1000      # 64 megapixels: bigger than any camera picture a board should decode
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")

INSTALL_PILLOW = ("reading picture files needs Pillow: pip install Pillow (on Raspberry Pi OS / Debian: "
                  "sudo apt install python3-pil); a numpy array (height x width x 3, uint8) works without it")

_pillow = []


def pillow(required=True):
    """``PIL.Image``, imported on first use; None (or InputError when ``required``) without Pillow."""
    if not _pillow:
        try:
            from PIL import Image
            _pillow.append(Image)
        except ImportError:
            _pillow.append(None)
    if _pillow[0] is None and required:
        raise InputError(INSTALL_PILLOW)
    return _pillow[0]


def is_pil_image(obj):
    """True for a PIL image, without importing Pillow when the caller never did."""
    import sys
    mod = sys.modules.get("PIL.Image")
    return mod is not None and isinstance(obj, mod.Image)


def list_images(folder):
    """The picture files in ``folder`` (by extension), sorted by name."""
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)
                   and not n.startswith("."))
    return [os.path.join(folder, n) for n in names]


def expand_sources(img):
    """(list of picture sources, whether the caller passed several) for a path, list, folder or picture."""
    if isinstance(img, (str, os.PathLike)):
        path = os.fspath(img)
        if os.path.isdir(path):
            files = list_images(path)
            if not files:
                raise InputError("the folder %s holds no pictures (%s)" % (path, ", ".join(IMAGE_EXTENSIONS)))
            return files, True
        return [path], False
    if isinstance(img, (list, tuple)):
        sources = []
        for item in img:
            sub, _ = expand_sources(item)
            sources.extend(sub)
        return sources, True
    if isinstance(img, np.ndarray) and img.ndim == 4:          # a batch N x H x W x C
        return list(img), True
    return [img], False


def source_name(src, index=0):
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, np.ndarray):
        return "array[%d]" % index if index else "array"
    return "image[%d]" % index if index else "image"


def read_image(src, color="RGB", background=None, max_pixels=MAX_PIXELS):
    """RGB uint8 HxWx3 from a path, a PIL image or a numpy array.

    ``color`` says how a numpy array's channels are ordered: ``RGB`` or ``BGR`` (OpenCV's order).
    ``background``: an (r, g, b) to composite transparent pictures on; None drops the alpha channel.
    """
    if isinstance(src, (str, os.PathLike)):
        return _read_file(os.fspath(src), background, max_pixels)
    if isinstance(src, bytes):
        import io
        return _from_pil(_open_pil(io.BytesIO(src), "the picture bytes", max_pixels), background)
    if is_pil_image(src):
        check_size(src, "the PIL image", max_pixels)  # lazily opened: decoding it is still to come
        return _from_pil(src, background)
    if isinstance(src, np.ndarray):
        return from_array(src, color, background)
    raise InputError("a picture is a file path, a folder, a list of paths, a PIL image or a numpy array "
                     "(height x width x 3, uint8); got %s" % type(src).__name__)


def from_array(a, color="RGB", background=None):
    """A numpy picture as RGB uint8 HxWx3. HxW and HxWx1 are grayscale; HxWx4 has alpha (dropped)."""
    color = str(color).upper()
    if color not in ("RGB", "BGR"):
        raise InputError("color=%r: a numpy picture's channels are 'RGB' or 'BGR' (OpenCV)" % color)
    if a.dtype != np.uint8:
        hint = ""
        if a.dtype.kind == "f":
            hint = "; values 0..1? use (a * 255).round().astype(np.uint8), values 0..255: a.astype(np.uint8)"
        raise InputError("a numpy picture must be uint8 (values 0..255), got %s%s" % (a.dtype, hint))
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise InputError("a numpy picture is height x width x channels with 1, 3 or 4 channels, got shape %s"
                         % (list(a.shape),))
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError("the picture is empty: shape %s" % (list(a.shape),))
    if a.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(a, 3, axis=2))
    rgb, alpha = a[:, :, :3], (a[:, :, 3] if a.shape[2] == 4 else None)
    if color == "BGR":
        rgb = rgb[:, :, ::-1]
    if alpha is not None and background is not None:
        rgb = composite(rgb, alpha, background)
    return np.ascontiguousarray(rgb)


def composite(rgb, alpha, background):
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    bg = np.asarray(background, np.float32).reshape(1, 1, 3)
    return np.clip(np.round(rgb * a + bg * (1 - a)), 0, 255).astype(np.uint8)


def _open_pil(fp, name, max_pixels):
    if isinstance(fp, (str, os.PathLike)):
        # opened without blocking and checked to be a regular file: a FIFO or a device is refused, not read
        f, _ = open_regular(fp, "picture")
        with f:
            return _open_pil(f, name, max_pixels)  # decoded (im.load) before the file closes
    Image = pillow()
    try:
        im = Image.open(fp)
    except FileNotFoundError:
        raise InputError("no such picture: %s" % name)
    except IsADirectoryError:
        raise InputError("%s is a folder, not a picture" % name)
    except Image.DecompressionBombError as e:
        raise InputError("%s: refused, too many pixels (%s)" % (name, e))
    except (OSError, SyntaxError, ValueError) as e:   # Pillow's "cannot identify image file"
        raise InputError("%s is not a picture Pillow can read (%s)" % (name, e))
    check_size(im, name, max_pixels)                  # from the header: nothing decoded yet
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError("%s could not be decoded (%s)" % (name, e))
    return im


def check_size(im, name, max_pixels=MAX_PIXELS):
    """Refuse, before decoding, a picture of more than ``max_pixels``, or whose decoded samples take more
    than an RGB picture of ``max_pixels`` would (a 16-bit or float picture holds 2-4 bytes a sample)."""
    w, h = im.size
    if w * h > max_pixels:
        raise InputError("%s is %dx%d = %.0f megapixels, more than tinyrt decodes (%.0f); make it smaller first"
                         % (name, w, h, w * h / 1e6, max_pixels / 1e6))
    decoded = w * h * _bytes_per_pixel(im.mode)
    if decoded > 3 * max_pixels:
        raise InputError("%s is %dx%d of %s samples: %.0f MB once decoded, more than tinyrt decodes (%.0f MB); "
                         "make it smaller or 8-bit first" % (name, w, h, im.mode, decoded / 1e6, 3 * max_pixels / 1e6))


def _bytes_per_pixel(mode):
    """What Pillow keeps a pixel of ``mode`` in (at least what numpy then copies it to)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode in ("LA", "La", "PA") or mode.startswith("I;16"):
        return 2
    if mode == "RGB" or mode in ("YCbCr", "LAB", "HSV"):
        return 3
    return 4  # RGBA, CMYK, I (32-bit), F (float), and whatever else


def _read_file(path, background, max_pixels):
    if not os.path.lexists(path):
        raise InputError("no such picture: %s" % path)
    if os.path.isdir(path):
        raise InputError("%s is a folder; pass it as the picture argument to run every picture in it" % path)
    return _from_pil(_open_pil(path, path, max_pixels), background)


def _from_pil(im, background=None):
    """A PIL image (any mode) as RGB uint8 HxWx3, EXIF orientation applied."""
    from PIL import ImageOps
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:          # a broken EXIF block should not stop the picture
        pass
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return from_array(sixteen_to_eight_bits(im))
    if mode == "F":
        return from_array(np.clip(np.round(np.asarray(im)), 0, 255).astype(np.uint8))
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        if background is None:
            return from_array(np.asarray(im)[:, :, :3].copy())
        a = np.asarray(im)
        return composite(a[:, :, :3], a[:, :, 3], background)
    if mode != "RGB":
        im = im.convert("RGB")     # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX
    return np.asarray(im).copy()


def sixteen_to_eight_bits(im):
    """A 16-bit PIL image (Pillow shows 16-bit PNGs as I;16 or I) as uint8 HxW: round(v / 257), a band of
    rows at a time (a float64 copy of a 64-megapixel picture alone would take 512 MB)."""
    a = np.asarray(im)
    out = np.empty(a.shape, np.uint8)
    for top in range(0, a.shape[0], 256):
        band = np.clip(a[top:top + 256], 0, 65535).astype(np.uint32)
        out[top:top + 256] = (band + 128) // 257
    return out


def to_gray(rgb):
    """ITU-R 601 luma as Pillow's convert('L') computes it (fixed point), uint8 HxW."""
    r, g, b = (rgb[:, :, i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)
