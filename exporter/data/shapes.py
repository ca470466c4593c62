"""Drawing synthetic shape pictures: the scenes, the shapes and their exact boxes.

Every picture comes from one ``numpy.random.RandomState``; the same seed gives the same pixels (Pillow's
drawing is deterministic), so a dataset is fully described by its seed and sizes.

A scene is: a background (a flat colour, a linear gradient or smooth blotchy noise), a few shapes with
random colour (kept visibly different from the background under them), size, position and rotation, an
optional clutter of thin lines, and pixel noise. Shapes are drawn at 2x and the picture is downsampled with
a box filter, which antialiases the edges the way a camera would. Boxes are the tight boxes of the drawn
outlines (polygon corners, or centre +- radius for a circle), in pixels of the final picture.
"""
import math

import numpy as np

CLASSES = ("circle", "square", "triangle", "star")
SUPERSAMPLE = 2


def _polygon(kind, cx, cy, r, angle):
    """Corner points (x, y) of a shape of 'radius' r (centre to corner) rotated by ``angle`` radians."""
    if kind == "square":
        n, radii = 4, [r]
    elif kind == "triangle":
        n, radii = 3, [r]
    elif kind == "star":
        n, radii = 10, [r, 0.45 * r]        # 5 outer and 5 inner corners, alternating
    else:
        raise ValueError(kind)
    pts = []
    for i in range(n):
        a = angle + 2 * math.pi * i / n
        rr = radii[i % len(radii)]
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


def shape_outline(kind, cx, cy, size, angle):
    """``(points or None, box)``: the polygon to draw (None for a circle) and its tight box (x1, y1, x2, y2).

    ``size`` is the shape's nominal width; each kind gets a radius so that the shapes look equally big."""
    if kind == "circle":
        r = size / 2.0
        return None, (cx - r, cy - r, cx + r, cy + r)
    scale = {"square": 0.5 * math.sqrt(2) * 0.85, "triangle": 0.62, "star": 0.55}[kind]
    pts = _polygon(kind, cx, cy, size * scale, angle)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return pts, (min(xs), min(ys), max(xs), max(ys))


def _background(rs, w, h):
    """A float32 [h, w, 3] background in 0..255: flat, gradient or smooth noise."""
    kind = rs.randint(3)
    c0 = rs.uniform(0, 255, 3)
    if kind == 0:
        bg = np.broadcast_to(c0, (h, w, 3)).astype(np.float32)
    elif kind == 1:
        c1 = rs.uniform(0, 255, 3)
        a = rs.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (xx * math.cos(a) + yy * math.sin(a))
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
        bg = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    else:
        # low-frequency noise: a coarse random grid upsampled bilinearly
        from PIL import Image
        g = rs.uniform(0, 255, (rs.randint(2, 6), rs.randint(2, 6), 3)).astype(np.uint8)
        bg = np.asarray(Image.fromarray(g).resize((w, h), Image.BILINEAR), dtype=np.float32)
        bg = 0.5 * bg + 0.5 * c0[None, None]
    return np.ascontiguousarray(bg, dtype=np.float32)


def _contrasting_colour(rs, under):
    """A random colour at least some distance from ``under`` (the mean colour beneath the shape)."""
    best, best_d = None, -1.0
    for _ in range(20):
        c = rs.uniform(0, 255, 3)
        d = float(np.abs(c - under).sum())
        if d > 160:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _overlap_ok(box, boxes, max_cover):
    """True when ``box`` covers at most ``max_cover`` of each earlier box, and they of it."""
    x1, y1, x2, y2 = box
    a = (x2 - x1) * (y2 - y1)
    for b in boxes:
        iw = min(x2, b[2]) - max(x1, b[0])
        ih = min(y2, b[3]) - max(y1, b[1])
        if iw <= 0 or ih <= 0:
            continue
        inter = iw * ih
        ab = (b[2] - b[0]) * (b[3] - b[1])
        if inter > max_cover * min(a, ab):
            return False
    return True


def draw_scene(rs, width, height, objects, clutter=True, noise=True):
    """Draw one picture. ``objects`` is a list of (kind, cx, cy, size, angle) in picture pixels.

    Returns ``(uint8 [height, width, 3] RGB array, [(kind, (x1, y1, x2, y2)), ...])`` in drawing order (later
    shapes lie on top of earlier ones)."""
    from PIL import Image, ImageDraw
    s = SUPERSAMPLE
    bg = _background(rs, width * s, height * s)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    if clutter and rs.rand() < 0.5:
        for _ in range(rs.randint(1, 4)):   # thin lines: something that is not a shape
            xs, ys = rs.uniform(0, width * s, 2), rs.uniform(0, height * s, 2)
            draw.line((xs[0], ys[0], xs[1], ys[1]), fill=tuple(int(v) for v in rs.uniform(0, 255, 3)),
                      width=int(rs.randint(1, 3) * s))
    out = []
    for kind, cx, cy, size, angle in objects:
        pts, box = shape_outline(kind, cx * s, cy * s, size * s, angle)
        x1, y1, x2, y2 = [int(round(v)) for v in box]
        patch = bg[max(0, y1):max(1, y2), max(0, x1):max(1, x2)]
        under = patch.reshape(-1, 3).mean(0) if patch.size else bg.reshape(-1, 3).mean(0)
        colour = tuple(int(v) for v in _contrasting_colour(rs, under))
        if pts is None:
            draw.ellipse(box, fill=colour)
        else:
            draw.polygon(pts, fill=colour)
        out.append((kind, tuple(float(v) / s for v in box)))
    img = img.resize((width, height), Image.BOX)
    arr = np.asarray(img, dtype=np.float32)
    if noise:
        sigma = rs.uniform(0, 10)
        arr = arr + rs.standard_normal(arr.shape).astype(np.float32) * sigma
    arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    # clip the boxes to the picture
    out = [(k, (max(0.0, b[0]), max(0.0, b[1]), min(float(width), b[2]), min(float(height), b[3]))) for k, b in out]
    return arr, out


def classification_scene(rs, size, classes=CLASSES):
    """One picture with one shape (of a random class) well inside the centre crop; returns (array, label)."""
    label = int(rs.randint(len(classes)))
    shape = rs.uniform(0.38, 0.7) * size
    margin = shape / 2 + 0.1 * size
    cx, cy = rs.uniform(margin, size - margin, 2)
    angle = rs.uniform(0, 2 * math.pi)
    arr, _ = draw_scene(rs, size, size, [(classes[label], cx, cy, shape, angle)])
    return arr, label


def detection_scene(rs, width, height, classes=CLASSES, max_objects=4, min_size=0.2, max_size=0.55,
                    max_cover=0.25):
    """One picture with 1..max_objects shapes, partly overlapping at most ``max_cover`` of a box.

    Sizes are fractions of the shorter side. Returns ``(array, [(label, (x1, y1, x2, y2)), ...])``."""
    n = int(rs.randint(1, max_objects + 1))
    side = min(width, height)
    objects, boxes = [], []
    tries = 0
    while len(objects) < n and tries < 50:
        tries += 1
        kind = classes[int(rs.randint(len(classes)))]
        size = rs.uniform(min_size, max_size) * side
        cx = rs.uniform(size * 0.5, width - size * 0.5)
        cy = rs.uniform(size * 0.5, height - size * 0.5)
        angle = rs.uniform(0, 2 * math.pi)
        _, box = shape_outline(kind, cx, cy, size, angle)
        if not _overlap_ok(box, boxes, max_cover):
            continue
        objects.append((kind, cx, cy, size, angle))
        boxes.append(box)
    arr, drawn = draw_scene(rs, width, height, objects)
    return arr, [(classes.index(k), b) for k, b in drawn]
