"""BaseDT's picture preparation (MMEdu's ``ImageData(path, backbone=...)``, what XEduHub runs), without OpenCV.

MMEdu users check a model with BaseDT or XEduHub (``wf(task='mmedu')``), so for MMEdu files ``tinyrt.run``
prepares pictures the way they do, step for step (BaseDT 0.1.3, ``data.py``):

1. read: ``cv2.imdecode(bytes, -1)`` (IMREAD_UNCHANGED): **no EXIF rotation**, gray stays one channel,
   transparent pictures keep their alpha;                                                   -> ``read_unrotated``
2. three channels: gray copied into the three; an alpha channel composited on white, in float32, then
   truncated to uint8 (``_to3channel``). Grayscale backbones (LeNet) instead take
   ``0.2989 * c0 + 0.587 * c1 + 0.114 * c2`` of OpenCV's B, G, R order, truncated (``_rgb2gray``);
3. normalise, *before* resizing: RGB, float32, ``(x - mean) * (1 / std)``;
4. resize the float picture with OpenCV's INTER_LINEAR (cv_linear.py), to exactly the recipe's size
   (aspect ratio not kept);
5. centre crop (MobileNet and the other classifiers: 256 -> 224, ``top = round((256 - 224) / 2)``);
6. CHW and a batch axis.

Pillow only decodes the file (it gives the same pixels as OpenCV for PNG and baseline JPEG); numpy pictures
are taken as they are (``color='BGR'`` for OpenCV frames, as BaseDT expects them).
"""
import os

import numpy as np

from ..errors import InputError
from .cv_linear import resize_linear

# BaseDT's _rgb2gray weights, applied to the channels in OpenCV's order (B, G, R)
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def read_unrotated(src, color="RGB", max_pixels=None):
    """The picture as OpenCV's ``imdecode(..., IMREAD_UNCHANGED)`` sees it, channels in RGB(A) order:
    uint8 HxW (gray), HxWx3 or HxWx4 (with alpha). No EXIF rotation."""
    from .image import MAX_PIXELS, _open_pil, check_size, from_array, is_pil_image, pillow
    max_pixels = max_pixels or MAX_PIXELS
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not os.path.exists(path):
            raise InputError("no such picture: %s" % path)
        if os.path.isdir(path):
            raise InputError("%s is a folder; pass it as the picture argument to run every picture in it" % path)
        return _from_pil(_open_pil(path, path, max_pixels))
    if isinstance(src, bytes):
        import io
        return _from_pil(_open_pil(io.BytesIO(src), "the picture bytes", max_pixels))
    if is_pil_image(src):
        pillow()
        check_size(src, "the PIL image", max_pixels)  # lazily opened: decoding it is still to come
        return _from_pil(src)
    if isinstance(src, np.ndarray):
        a = src
        if a.ndim == 3 and a.shape[2] in (3, 4) and a.dtype == np.uint8:
            if str(color).upper() == "BGR":
                a = np.concatenate([a[:, :, 2::-1], a[:, :, 3:]], axis=2)
            elif str(color).upper() != "RGB":
                raise InputError("color=%r: a numpy picture's channels are 'RGB' or 'BGR' (OpenCV)" % color)
            return np.ascontiguousarray(a)
        if a.ndim == 3 and a.shape[2] == 1 and a.dtype == np.uint8:
            return np.ascontiguousarray(a[:, :, 0])
        if a.ndim == 2 and a.dtype == np.uint8 and a.size:
            return a
        return from_array(a, color)          # its clear error for other dtypes and shapes
    raise InputError("a picture is a file path, a folder, a list of paths, a PIL image or a numpy array "
                     "(height x width x 3, uint8); got %s" % type(src).__name__)


def _from_pil(im):
    mode = im.mode
    if mode in ("1", "L"):
        return np.asarray(im.convert("L")).copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        from .image import sixteen_to_eight_bits
        return sixteen_to_eight_bits(im)
    if mode == "F":
        return np.clip(np.round(np.asarray(im)), 0, 255).astype(np.uint8)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info):
        return np.asarray(im.convert("RGBA")).copy()
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im).copy()


def three_channels(pic):
    """BaseDT's ``_to3channel``: RGB uint8 HxWx3 (gray copied, alpha composited on white and truncated)."""
    if pic.ndim == 2:
        return np.repeat(pic[:, :, None], 3, axis=2)
    if pic.shape[2] == 4:
        a = pic[:, :, 3].astype(np.float32) / np.float32(255.0)
        rgb = np.empty(pic.shape[:2] + (3,), np.float32)
        for c in range(3):
            rgb[:, :, c] = pic[:, :, c] * a + (np.float32(1.0) - a) * np.float32(255)
        return rgb.astype(np.uint8)
    return pic


def basedt_gray(pic):
    """BaseDT's ``_rgb2gray`` (LeNet): the weights meet OpenCV's B, G, R order; gray pictures stay as they are."""
    if pic.ndim == 2:
        return pic
    bgr = three_channels(pic)[:, :, ::-1].astype(np.float64)
    return np.clip(np.dot(bgr, GRAY_WEIGHTS), 0, 255).astype(np.uint8)


def prepare(pic, recipe, geometry):
    """``pic`` from :func:`read_unrotated` -> float32 [1, C, H, W] by BaseDT's steps; fills ``geometry``."""
    if pic.ndim < 2 or pic.shape[0] == 0 or pic.shape[1] == 0:
        raise InputError("the picture has no pixels (shape %s)" % (list(pic.shape),))
    if recipe.color == "GRAY":
        img = basedt_gray(pic)[:, :, None]
    else:
        img = three_channels(pic)
    mean = np.array(recipe.mean, np.float32).reshape(1, 1, -1)
    inv_std = (1.0 / np.array(recipe.std, np.float64)).astype(np.float32).reshape(1, 1, -1)

    def normalise(pixels):          # BaseDT's order: before the resize (only the rows it reads are converted)
        return (pixels.astype(np.float32) - mean) * inv_std

    h0, w0 = img.shape[:2]
    if recipe.resize:
        th, tw = recipe.resize
        x = resize_linear(img, (th, tw), convert=normalise)
        geometry.scale_x, geometry.scale_y = tw / float(w0), th / float(h0)
    else:
        x = normalise(img)
    if recipe.crop:
        ch, cw = recipe.crop
        h, w = x.shape[:2]
        if ch > h or cw > w:
            raise InputError("crop %dx%d is larger than the resized picture %dx%d" % (cw, ch, w, h))
        top, left = max(0, int(round((h - ch) / 2.0))), max(0, int(round((w - cw) / 2.0)))
        x = x[top:top + ch, left:left + cw]
        geometry.pad_x -= left
        geometry.pad_y -= top
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
