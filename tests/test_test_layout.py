"""The test tree's own rules (each broke a whole-suite run once)."""
import glob
import os
import re

TESTS = os.path.dirname(os.path.abspath(__file__))


def test_no_test_imports_from_conftest():
    """tests/ and tests/boards/ each have a conftest.py, both imported as the module ``conftest``: in a run
    of the whole suite ``from conftest import ...`` got the boards' one (11 modules failed to import,
    unnoticed by runs of single files). Shared helpers live in tests/oracle.py."""
    offenders = []
    for path in glob.glob(os.path.join(TESTS, "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            if re.search(r"^\s*(from conftest import|import conftest)", f.read(), re.M):
                offenders.append(os.path.relpath(path, TESTS))
    assert not offenders, "import the helpers from tests/oracle.py instead: %s" % offenders
