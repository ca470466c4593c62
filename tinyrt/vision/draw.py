"""Drawing an answer on the picture with Pillow: boxes with name and score, or the top class.

* one colour per class (20 well-separated colours, then hues spread by the golden ratio);
* labels readable on any background: the text sits on a box filled with the class colour, in black or white,
  whichever contrasts more with that colour (by its luminance);
* names in Chinese (or any script beyond ASCII) need a font that has them: tinyrt looks for a CJK font on the
  machine (``fc-list :lang=zh``, then common paths on Debian / Raspberry Pi OS, macOS and Windows; ``font=``
  or the ``TINYRT_FONT`` environment variable names one directly). Without one it writes ``#label`` instead
  of a name it cannot render, rather than crashing or drawing empty boxes, and warns once, naming the
  package to install.
"""
import os
import subprocess

import numpy as np

from .image import pillow

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
           (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
           (0, 0, 128), (128, 128, 128)]

LATIN_FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf",
               "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
               "/usr/share/fonts/TTF/DejaVuSans.ttf", "/Library/Fonts/Arial.ttf", "C:/Windows/Fonts/arial.ttf"]
CJK_FONTS = ["/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
             "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc", "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
             "/usr/share/fonts/truetype/arphic/uming.ttc", "/System/Library/Fonts/PingFang.ttc",
             "/System/Library/Fonts/STHeiti Light.ttc", "/Library/Fonts/Arial Unicode.ttf",
             "C:/Windows/Fonts/msyh.ttc", "C:/Windows/Fonts/simhei.ttf", "C:/Windows/Fonts/simsun.ttc"]

_font_files = {}


def color_of(label):
    """The colour of a class: (r, g, b)."""
    label = int(label)
    if 0 <= label < len(PALETTE):
        return PALETTE[label]
    import colorsys
    h = (label * 0.618033988749895) % 1.0
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, 0.75, 0.95))


def text_color(background):
    """Black or white, whichever reads better on ``background`` (ITU-R 601 luma)."""
    r, g, b = background[:3]
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _fc_list(lang):
    try:
        out = subprocess.run(["fc-list", ":lang=%s" % lang, "file"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    files = [line.split(":")[0].strip() for line in out.splitlines() if line.strip()]
    return sorted(f for f in files if f.lower().endswith((".ttf", ".ttc", ".otf")))


CJK_PACKAGES = "fonts-noto-cjk (or fonts-wqy-microhei)"   # Debian / Raspberry Pi OS packages with Chinese
_given = []            # the font file given with font= (tinyrt.run / Model.run), if any
_warned = []


def use_font(path):
    """Draw labels with this TrueType/OpenType file (what ``font=`` does); it must exist."""
    if not os.path.isfile(os.fspath(path)):
        from ..errors import InputError
        raise InputError("font=%r: no such font file (a .ttf, .ttc or .otf)" % os.fspath(path))
    _given[:] = [os.fspath(path)]
    _font_files.clear()


def find_font(cjk=False):
    """A TrueType/OpenType font file on this machine (one that has Chinese when ``cjk``), or None:
    ``font=``, else ``TINYRT_FONT``, else fc-list and the usual places (Noto CJK, WenQuanYi, Droid Sans
    Fallback, ...)."""
    key = "cjk" if cjk else "latin"
    if key not in _font_files:
        env = os.environ.get("TINYRT_FONT")
        candidates = list(_given) + ([env] if env else [])
        candidates += (_fc_list("zh") + CJK_FONTS) if cjk else LATIN_FONTS + _fc_list("en")
        _font_files[key] = next((c for c in candidates if c and os.path.isfile(c)), None)
    return _font_files[key]


def load_font(size, cjk=False):
    """(font, whether it can draw Chinese)."""
    from PIL import ImageFont
    path = find_font(cjk)
    if path:
        try:
            return ImageFont.truetype(path, size), cjk
        except (OSError, ImportError):    # a broken file, or Pillow built without FreeType
            pass
    if cjk:
        if not _warned:                   # once a process: names are drawn as #label from here on
            _warned.append(True)
            import warnings
            warnings.warn("no font with Chinese characters found: class names are drawn as #label. Install "
                          "one (sudo apt install %s) or give font='path/to/font.ttc' (or TINYRT_FONT)"
                          % CJK_PACKAGES, stacklevel=3)
        font, _ = load_font(size, cjk=False)
        return font, False
    try:
        return ImageFont.load_default(size), False     # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default(), False          # older Pillow: a small bitmap font


def _text_size(draw, text, font):
    try:
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        return x1, y1
    except AttributeError:                               # Pillow < 8
        return font.getsize(text)


def label_text(prediction, can_cjk):
    name = str(prediction.name)
    if not can_cjk and not _ascii(name):
        name = "#%d" % prediction.label                 # no font for it here: the label number instead
    return "%s %.2f" % (name, prediction.score)


def _ascii(text):
    try:
        text.encode("ascii")
        return True
    except UnicodeEncodeError:
        return False


def annotate(rgb, result):
    """A PIL image: the picture with ``result`` (an ImageResult) drawn on it."""
    Image = pillow()
    from PIL import ImageDraw
    im = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(im)
    w, h = im.size
    side = min(w, h)
    line = max(2, int(round(side / 160.0)))
    size = max(11, int(round(side / 28.0)))
    need_cjk = any(not _ascii(str(p.name)) for p in result)
    font, can_cjk = load_font(size, cjk=need_cjk)
    if result.task == "detection":
        ordered = list(result)[::-1]              # the best last, so it is drawn on top
        for p in ordered:
            draw.rectangle(list(p.box), outline=color_of(p.label), width=line)
        for p in ordered:                          # labels after all boxes: no box line crosses a label
            _label(draw, font, label_text(p, can_cjk), color_of(p.label), p.box[0], p.box[1], w, h, above=True)
    elif result:
        p = result[0]
        _label(draw, font, label_text(p, can_cjk), color_of(p.label), 0, 0, w, h, above=False)
    return im


def _label(draw, font, text, color, x, y, w, h, above):
    tw, th = _text_size(draw, text, font)
    pad = max(1, th // 6)
    bw, bh = tw + 2 * pad, th + 2 * pad
    left = int(min(max(0, x), max(0, w - bw)))
    top = int(y - bh) if above and y - bh >= 0 else int(max(0, y))
    top = min(top, max(0, h - bh))
    draw.rectangle([left, top, left + bw - 1, top + bh - 1], fill=color)
    draw.text((left + pad, top + pad), text, fill=text_color(color), font=font)


def output_path(target, source=None, multiple=False, index=0):
    """Where to save an annotated picture: ``target`` itself when it names a file, else a file in the
    folder ``target`` named after the picture (``picture.jpg``; ``image_<n>.png`` for arrays)."""
    target = os.fspath(target)
    is_folder = os.path.isdir(target) or target.endswith(("/", os.sep)) or multiple \
        or not os.path.splitext(target)[1]
    if not is_folder:
        return target
    if source:
        name = os.path.basename(os.fspath(source))
    else:
        name = "image_%d.png" % index
    return os.path.join(target, name)
