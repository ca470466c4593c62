"""A horizontal bar chart of the latency table, drawn with Pillow (no matplotlib needed)."""
from PIL import Image, ImageDraw, ImageFont

COLOURS = {"tinyrt-numba": (214, 96, 36), "tinyrt-numpy": (240, 170, 90), "onnxruntime": (60, 110, 180),
           "torch": (120, 120, 120), "onnx-reference": (180, 180, 180)}


def bar_chart(rows, threads, path):
    font = ImageFont.load_default()
    bar_h, gap, left, right, top = 14, 4, 260, 140, 40
    lines = [(r, t) for r in rows for t in threads if t in r["lat"]]
    models = []
    for r in rows:
        if r["model"] not in models:
            models.append(r["model"])
    height = top + len(lines) * (bar_h + gap) + len(models) * 24 + 20
    width = 1000
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((10, 10), "latency, ms (batch 1, fp32); bar length relative to the slowest fast runtime per model",
           fill="black", font=font)
    y = top
    for model in models:
        d.text((10, y + 4), model, fill="black", font=font)
        y += 24
        mine = [(r, t) for r, t in lines if r["model"] == model]
        fast = [r["lat"][t] for r, t in mine if r["runtime"] != "onnx-reference"]
        scale = (width - left - right) / (max(fast) if fast else 1.0)
        for r, t in mine:
            ms = r["lat"][t] * 1e3
            length = min(width - left - right, r["lat"][t] * scale)
            d.text((20, y + 1), "%s, %d thread%s" % (r["runtime"], t, "s" if t > 1 else ""), fill="black",
                   font=font)
            d.rectangle([left, y, left + max(1, int(length)), y + bar_h], fill=COLOURS.get(r["runtime"], "gray"))
            ort = r["ort"].get(t)
            label = "%.1f ms" % ms + (" (%.2fx ort)" % (r["lat"][t] / ort) if ort else "")
            d.text((left + int(length) + 6, y + 1), label, fill="black", font=font)
            y += bar_h + gap
    img.save(path)
