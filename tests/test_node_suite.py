"""ONNX's node conformance suite through tinyrt, plus the registry-versus-onnx.defs check.

The whole suite runs once per module (``suite`` fixture, a minute or two); see tests/node_suite.py for the
statuses and the onnxruntime oracle rule. ``pytest -s`` shows the details; the summary always goes to the
terminal so CI logs carry the counts.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("onnx")

import node_suite  # noqa: E402
from node_exclusions import EXCLUDED  # noqa: E402

MIN_PASSED = 900
MIN_OPS = 80
MAX_FAILED = 0.01      # of supported cases
MAX_REFUSED = 0.10
MAX_EXCLUDED = 0.05
BASE_OPSET = 7         # tinyrt registers every schema version in effect from this opset on


@pytest.fixture(scope="module")
def suite():
    return node_suite.run_suite()


@pytest.mark.slow
def test_node_suite(suite, capsys):
    summary = suite.summary()
    details = suite.details()
    with capsys.disabled():
        print("\n" + summary)
    print(details)          # shown with -s or on failure
    sup = suite.supported
    problems = []
    if suite.count("passed") < MIN_PASSED:
        problems.append("only %d cases passed (need >= %d)" % (suite.count("passed"), MIN_PASSED))
    if len(suite.exercised_ops) < MIN_OPS:
        problems.append("passing cases exercise only %d distinct ops (need >= %d)"
                        % (len(suite.exercised_ops), MIN_OPS))
    for status, limit in (("failed", MAX_FAILED), ("refused", MAX_REFUSED), ("excluded", MAX_EXCLUDED)):
        n = suite.count(status)
        if n >= limit * max(sup, 1):
            problems.append("%d %s cases: not under %g%% of the %d supported" % (n, status, 100 * limit, sup))
    assert not problems, "\n".join(problems) + "\n\n" + summary + "\n" + details


@pytest.fixture(scope="module")
def case_names():
    return {c.name for c in node_suite.collect_cases()}


@pytest.mark.parametrize("name", sorted(EXCLUDED))
def test_excluded_case_exists(name, case_names):
    assert name in case_names, "node_exclusions.py lists %r, which the installed onnx no longer has" % name
    assert EXCLUDED[name].strip(), "exclusion of %r needs a reason" % name


def expected_since_versions(op_type, domain, schemas):
    """Since-versions tinyrt must register: for the default domain, the one in effect at opset 7 (or the
    first, for ops born later) and every later one up to onnx's newest opset; other domains: all."""
    import onnx.defs
    found = sorted({s.since_version for s in schemas.get((domain, op_type), ())})
    if not found or domain != "":
        return found
    found = [v for v in found if v <= onnx.defs.onnx_opset_version()]
    base = max([v for v in found if v <= BASE_OPSET] or found[:1])
    return [v for v in found if v >= base]


def test_registered_versions_match_onnx_defs():
    import onnx.defs
    import tinyrt.ops
    schemas = {}
    for s in onnx.defs.get_all_schemas_with_history():
        schemas.setdefault((node_suite.norm_domain(s.domain), s.name), []).append(s)
    onnx_domains = {d for d, _ in schemas}
    problems = []
    for domain, op_type in tinyrt.ops.registered():
        dom = node_suite.norm_domain(domain)
        if dom not in onnx_domains:
            continue   # tinyrt-private or exporter domains: onnx.defs knows nothing to compare with
        have = sorted(tinyrt.ops.versions(op_type, domain))
        want = expected_since_versions(op_type, dom, schemas)
        if not want:
            problems.append("%s: onnx.defs has no such op in domain %r" % (op_type, dom))
        elif have != want:
            missing = [v for v in want if v not in have]
            extra = [v for v in have if v not in want]
            problems.append("%s: registered %s, onnx.defs says %s (missing %s, not a schema version %s)"
                            % (node_suite.op_label((dom, op_type)), have, want, missing, extra))
    assert not problems, "%d ops register the wrong since-versions:\n  %s" % (len(problems),
                                                                             "\n  ".join(problems))


# --- the harness itself: a runner that cannot fail proves nothing ----------------------------------------

def _relu_model(opset=14):
    from onnx import TensorProto, helper
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_compare_rules():
    import numpy as np
    f = np.array([1.0, np.nan, np.inf, -2.0], np.float32)
    assert node_suite.compare(f.copy(), f) is None                              # NaN == NaN, inf == inf
    assert node_suite.compare(f + np.float32(5e-5), f) is None                  # within 1e-4 * max(1, 2)
    assert node_suite.compare(f + np.float32(1e-3), f) is not None
    big = np.array([1000.0, 0.0], np.float32)
    assert node_suite.compare(big + np.float32(0.05), big) is None              # scale is max|b| = 1000
    assert "dtype" in node_suite.compare(f.astype(np.float64), f)
    assert "shape" in node_suite.compare(f[:3], f)
    assert node_suite.compare(np.array([1, 2], np.int64), np.array([1, 3], np.int64)) is not None
    assert node_suite.compare(np.array([True]), np.array([True])) is None
    assert node_suite.compare(np.float32(1.0), np.array(1.0, np.float32)) is not None   # not an ndarray
    assert node_suite.compare(np.zeros(2, np.float32), np.zeros(2, np.float64), np.dtype(np.float32)) is None
    seq = [np.array([1], np.int64), np.array([2, 3], np.int64)]                  # sequences: element-wise
    assert node_suite.compare([a.copy() for a in seq], seq) is None
    assert "sequence of 1" in node_suite.compare(seq[:1], seq)
    assert "element 1" in node_suite.compare([seq[0], seq[1] + 1], seq)
    assert node_suite.compare(seq[0], seq) is not None


def test_harness_fails_wrong_outputs_and_applies_the_oracle():
    import numpy as np
    model = _relu_model().SerializeToString()
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    right = np.maximum(x, 0)
    wrong = right + 1
    f32 = [np.dtype(np.float32)]
    assert node_suite.check_model(model, [([x], [right])], f32) == ("passed", "", False)
    status, reason, _ = node_suite.check_model(model, [([x], [wrong])], f32, use_ort=False)
    assert status == "failed" and "values differ" in reason
    # onnx's expected output wrong, tinyrt == onnxruntime: passes, flagged as passed via onnxruntime
    assert node_suite.check_model(model, [([x], [wrong])], f32, use_ort=True) == ("passed", "", True)


def test_harness_times_out():
    import time
    status, reason, _ = node_suite.run_with_timeout(lambda: time.sleep(2) or ("passed", "", False), 0.2)
    assert status == "failed" and "timeout" in reason


def test_model_ops_sees_subgraphs():
    from onnx import TensorProto, helper
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1])])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    assert node_suite.model_ops(model) == {("", "If"), ("", "Relu"), ("", "Neg")}


def test_supported_ops_lists_the_default_domain_registry():
    """tinyrt.supported_ops() is what the harness's notion of 'supported' rests on: keep them in step."""
    import tinyrt
    import tinyrt.ops
    default = {op for dom, op in tinyrt.ops.registered() if node_suite.norm_domain(dom) == ""}
    assert set(tinyrt.supported_ops()) == default
