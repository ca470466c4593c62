"""onnx's shipped model suites (pytorch-converted, pytorch-operator, simple, light) through tinyrt.

One test per model directory. All models run once per module (they are small; the light ones test plumbing,
not numerics: their weights are constants). A model tinyrt refuses (UnsupportedError at load) is skipped
as "refused: <reason>"; one that uses an op tinyrt lacks is skipped naming the op. A last test asserts the
refused stay a small minority of the supported models and prints the counts.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("onnx")

import node_suite  # noqa: E402
import onnx_data_suites  # noqa: E402

MAX_REFUSED = 0.10     # of supported models
CASES = onnx_data_suites.discover()


@pytest.fixture(scope="module")
def results():
    res = onnx_data_suites.run_all()
    return {r.name: r for r in res.results}, res


@pytest.mark.slow
@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_model(case_id, results):
    r = results[0][case_id]
    if r.status == "not-supported":
        pytest.skip(r.reason)
    if r.status == "refused":
        pytest.skip("refused: " + r.reason)
    assert r.status == "passed", r.reason


@pytest.mark.slow
def test_refused_are_a_small_minority(results, capsys):
    res = results[1]
    text = onnx_data_suites.summary(res)
    with capsys.disabled():
        print("\n" + text)
    print(res.details())
    sup = res.supported
    assert len(res.results) == len(CASES)
    assert res.count("refused") <= MAX_REFUSED * sup, (
        "%d of %d supported models refused (limit %g%%)\n%s\n%s"
        % (res.count("refused"), sup, 100 * MAX_REFUSED, text, res.details()))


def test_suites_are_shipped():
    """The wheel still ships the suites (a renamed folder must not silently empty this file)."""
    found = {c.suite for c in CASES}
    missing = set(onnx_data_suites.SUITES) - found
    assert not missing, "missing suites: %s" % sorted(missing)
    assert node_suite  # imported for its helpers; keeps linters quiet
