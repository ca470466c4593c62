"""The Python snippets of docs/coming-from-mmedu.md run as they are, in order, in one folder (as a reader
would paste them), and print what the page says they print."""
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("PIL")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "coming-from-mmedu.md")

pytestmark = pytest.mark.slow


def snippets():
    with open(DOC, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_mmedu_page_snippets_run(tmp_path):
    blocks = snippets()
    assert len(blocks) >= 8
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8")
    outputs = []
    for i, code in enumerate(blocks):
        path = tmp_path / ("snippet_%d.py" % i)
        path.write_text(code, encoding="utf-8")
        out = subprocess.run([sys.executable, str(path)], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True)
        assert out.returncode == 0, "snippet %d of %s failed:\n%s\n%s" % (i, DOC, code, out.stdout[-3000:])
        outputs.append(out.stdout)
    joined = "\n".join(outputs)
    assert (tmp_path / "out_file" / "catdog.onnx").exists() and (tmp_path / "out_file" / "catdog.py").exists()
    assert "这是小" in outputs[2]
    assert "标签（序号）为：" in outputs[3] and "'预测结果'" in outputs[3]
    assert outputs[4].count("pictures/") == 2 and (tmp_path / "annotated" / "one.jpg").exists()
    assert "'预测结果'" in outputs[5]
    assert "objects" in outputs[6] and (tmp_path / "annotated" / "det.jpg").exists()
    assert "'标签'" in outputs[7] and "(240, 320, 3)" in outputs[7] and "objects at thr=0.3" in outputs[7]
    assert "Traceback" not in joined
