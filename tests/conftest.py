"""Every test's sessions check their compiled programs (tinyrt/program.py) against the step-by-step run,
bit for bit, from the first run on (without this, a program is made on a signature's second run only)."""
import os

os.environ.setdefault("TINYRT_PROGRAM", "check")
