"""What every test shares.

Every test's sessions check their compiled programs (tinyrt/program.py) against the step-by-step run,
bit for bit, from the first run on (without this, a program is made on a signature's second run only).

The oracle helpers (onnxruntime, the project's tolerance, model building) are in tests/oracle.py:
``from oracle import assert_close, make_model, ort_run`` (never ``from conftest import``: see there).
"""
import os

os.environ.setdefault("TINYRT_PROGRAM", "check")
