"""The model suites that ship as files inside the onnx wheel, run through tinyrt.

``onnx/backend/test/data/{pytorch-converted, pytorch-operator, simple}/<case>/`` hold ``model.onnx`` and
``test_data_set_*/{input,output}_*.pb``. ``light/`` holds ``light_<net>.onnx`` plus
``light_<net>_output_0.pb``: real architectures (AlexNet, ResNet50, ...) whose weights are constants built
in the graph (ConstantOfShape), fed a deterministic input the way onnx's runner makes it
(``arange(n) / n``, unknown dims as 1). Their outputs hardly depend on the input: they test plumbing (graph
building, memory planning, the many-node path), not numerics.

Each model gets the same treatment as a node case (tests/node_suite.py): not-supported when it uses an op
tinyrt lacks, refused on UnsupportedError at load, otherwise compared output by output with the
onnxruntime fallback when the stored expected output disagrees. Most pytorch-* models are opset 6, before
tinyrt's scope (opset 7 on): when tinyrt refuses such a file, the model is upgraded to opset 7 with
``onnx.version_converter`` (what a user would do) and the upgraded model is tested; the summary counts them.

Command line: ``python tests/onnx_data_suites.py [-v] [SUBSTRING ...]``.
"""
import glob
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import node_suite  # noqa: E402

SUITES = ("pytorch-converted", "pytorch-operator", "simple", "light")


def data_dir():
    import onnx
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")


class DataCase(object):
    """One model directory (or light model) of a shipped suite."""

    def __init__(self, suite, name, model_path, data_dirs=(), light_output=None):
        self.suite = suite
        self.name = name
        self.id = suite + "/" + name
        self.model_path = model_path
        self.data_dirs = list(data_dirs)
        self.light_output = light_output

    def __repr__(self):
        return "DataCase(%r)" % self.id


def discover():
    """Every model of the shipped suites, sorted by id."""
    root = data_dir()
    cases = []
    for suite in SUITES:
        folder = os.path.join(root, suite)
        if not os.path.isdir(folder):
            continue
        if suite == "light":
            for path in sorted(glob.glob(os.path.join(folder, "light_*.onnx"))):
                name = os.path.basename(path)[:-len(".onnx")]
                out = os.path.join(folder, name + "_output_0.pb")
                cases.append(DataCase(suite, name, path, light_output=out if os.path.exists(out) else None))
            continue
        for d in sorted(os.listdir(folder)):
            path = os.path.join(folder, d, "model.onnx")
            if os.path.exists(path):
                sets = sorted(glob.glob(os.path.join(folder, d, "test_data_set_*")))
                cases.append(DataCase(suite, d, path, sets))
    return cases


def _load_value(path, type_proto):
    """A .pb file as the graph's declared type says: TensorProto, SequenceProto (a list) or OptionalProto."""
    import onnx
    from onnx import numpy_helper
    with open(path, "rb") as f:
        raw = f.read()
    which = type_proto.WhichOneof("value") if type_proto is not None else "tensor_type"
    if which == "sequence_type":
        proto = onnx.SequenceProto()
        proto.ParseFromString(raw)
        return numpy_helper.to_list(proto)
    if which == "optional_type":
        proto = onnx.OptionalProto()
        proto.ParseFromString(raw)
        return numpy_helper.to_optional(proto)
    proto = onnx.TensorProto()
    proto.ParseFromString(raw)
    return numpy_helper.to_array(proto)


def _dummy_input(vi):
    """onnx's runner's input for light models: arange(n)/n in float32, unknown dims taken as 1."""
    if vi.type.tensor_type.elem_type != 1:
        raise ValueError("light model input %r is not float" % vi.name)
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def _type_of(value_infos, i):
    return value_infos[i].type if i < len(value_infos) else None


def load(case):
    """(model ModelProto, model bytes, data sets [(inputs, expected outputs)])."""
    import onnx
    with open(case.model_path, "rb") as f:
        model_bytes = f.read()
    model = onnx.load_from_string(model_bytes)
    inits = {i.name for i in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    outputs = list(model.graph.output)
    data_sets = []
    if case.suite == "light":
        ins = [_dummy_input(vi) for vi in inputs]
        outs = [_load_value(case.light_output, outputs[0].type)] if case.light_output else []
        data_sets.append((ins, outs))
    for d in case.data_dirs:
        n_in = len(glob.glob(os.path.join(d, "input_*.pb")))
        n_out = len(glob.glob(os.path.join(d, "output_*.pb")))
        ins = [_load_value(os.path.join(d, "input_%d.pb" % i), _type_of(inputs, i)) for i in range(n_in)]
        outs = [_load_value(os.path.join(d, "output_%d.pb" % i), _type_of(outputs, i)) for i in range(n_out)]
        data_sets.append((ins, outs))
    return model, model_bytes, data_sets


def run_case(case, have=None, timeout=60.0, use_ort=True):
    """Returns a node_suite.CaseResult for one shipped model.

    A light model's expected file holds only output 0, so only output 0 is compared (the others, if any,
    are still computed).
    """
    if have is None:
        have = node_suite.tinyrt_ops()
    t0 = time.time()
    model, model_bytes, data_sets = load(case)
    ops = node_suite.model_ops(model)
    missing = sorted(node_suite.op_label(k) for k in ops if k not in have)
    if missing:
        return node_suite.CaseResult(case.id, "not-supported", "tinyrt lacks " + ", ".join(missing), ops,
                                     case.suite)
    declared = node_suite.declared_dtypes(model.graph)
    primary = "+".join(sorted(node_suite.op_label(k) for k in ops)) if case.suite != "light" else "light"
    if case.suite == "light":
        model_bytes = _only_first_output(model) if len(model.graph.output) > 1 else model_bytes
        declared = declared[:1]
    status, reason, via = node_suite.run_with_timeout(
        lambda: node_suite.check_model(model_bytes, data_sets, declared, use_ort=use_ort), timeout)
    if status == "failed" and case.suite == "light" and use_ort:
        status, reason, via = _check_logits_instead(model, data_sets, declared, timeout, (status, reason, via))
    opset = default_opset(model)
    if status == "refused" and opset is not None and opset < 7:
        # tinyrt's scope starts at opset 7 (DESIGN: ops register the schema in effect at 7 onwards), so an
        # opset-6 file is refused when one of its ops changed at 7. Upgrade it the way a user would, with
        # onnx's version converter, and test the upgraded model: that still exercises the op's numerics.
        refusal = reason
        try:
            upgraded = _upgrade(model, 7, keep_first_output=case.suite == "light")
        except Exception as e:
            return node_suite.CaseResult(case.id, "refused", "%s (and onnx.version_converter cannot upgrade "
                                         "it: %s)" % (refusal, node_suite._short(e, 150)), ops, case.suite)
        status, reason, via = node_suite.run_with_timeout(
            lambda: node_suite.check_model(upgraded, data_sets, declared, use_ort=use_ort), timeout)
        note = "%s opset-%d model upgraded to opset 7 (original refused: %s)" % (UPGRADED, opset, refusal)
        if status == "failed" and use_ort:
            # The converter only renumbers some ops (PRelu-6's per-channel slope is not PRelu-7's numpy
            # broadcasting): when onnxruntime cannot run the upgraded model either, the upgrade is at fault.
            try:
                node_suite.ort_run(upgraded, data_sets[0][0])
            except Exception as e:
                status = "refused"
                reason = ("%s; the upgraded model is invalid too (onnxruntime: %s)"
                          % (refusal, node_suite._short(e, 200)))
                return node_suite.CaseResult(case.id, status, reason, ops, primary, via, time.time() - t0)
        reason = note if status == "passed" else reason + " [" + note + "]"
    return node_suite.CaseResult(case.id, status, reason, ops, primary, via, time.time() - t0)


UPGRADED = "upgraded:"


def default_opset(model):
    versions = [o.version for o in model.opset_import if o.domain in node_suite.DEFAULT_DOMAINS]
    return max(versions) if versions else None


def _upgrade(model, opset, keep_first_output=False):
    from onnx import version_converter
    m = version_converter.convert_version(model, opset)
    if keep_first_output:
        del m.graph.output[1:]
    return m.SerializeToString()


def _check_logits_instead(model, data_sets, declared, timeout, failed):
    """A light model ending in a Softmax over logits so large that float32 rounding decides it: compare
    the logits (with onnxruntime) instead of the probabilities.

    light_squeezenet's logits are ~9.5e9, where one float32 step is 1024: the softmax of 1,000 such
    near-equal logits is 1/k on the k logits that round to the maximum and 0 elsewhere, so it depends on
    the summation order inside the convs, which no two runtimes share (tinyrt's own two paths, or one
    path at 1 and 2 threads, give different k). The logits themselves are held to the usual tolerance.
    """
    import onnx
    out = model.graph.output[0].name
    last = [n for n in model.graph.node if out in n.output]
    if not last or last[0].op_type != "Softmax":
        return failed
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[:]
    m.graph.output.append(onnx.helper.make_empty_tensor_value_info(last[0].input[0]))
    logits_model = m.SerializeToString()
    ins = data_sets[0][0]
    logits = node_suite.ort_run(logits_model, ins)[0]
    if not np.abs(logits).max() * 2.0 ** -23 > 1:  # a float32 step below 1: the softmax is well posed
        return failed
    status, reason, via = node_suite.run_with_timeout(
        lambda: node_suite.check_model(logits_model, [(ins, [logits])], declared, use_ort=False), timeout)
    note = "compared the logits (max |logit| %.3g: float32 rounding decides the softmax)" % np.abs(logits).max()
    return status, (note if status == "passed" else reason + " [" + note + "]"), True


def _only_first_output(model):
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[1:]
    return m.SerializeToString()


def run_all(substrings=None, timeout=60.0, use_ort=True, progress=None):
    have = node_suite.tinyrt_ops()
    t0 = time.time()
    results = []
    for case in discover():
        if substrings and not any(s in case.id for s in substrings):
            continue
        r = run_case(case, have, timeout, use_ort)
        results.append(r)
        if progress:
            progress(r)
    return node_suite.SuiteResult(results, time.time() - t0)


def summary(res):
    sup = res.supported
    upgraded = [r for r in res.results if UPGRADED in r.reason]
    return ("tinyrt on onnx's shipped model suites (%s): %d models, %d supported: %d passed (%d via "
            "onnxruntime), %d failed, %d refused; %d not-supported (an op tinyrt lacks); %d opset<7 "
            "models refused as such and tested after onnx.version_converter upgraded them to opset 7"
            % (", ".join(SUITES), len(res.results), sup, res.count("passed"), len(res.passed_via_ort),
               res.count("failed"), res.count("refused"), res.count("not-supported"), len(upgraded)))


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Run onnx's shipped model suites through tinyrt.")
    p.add_argument("substring", nargs="*", help="only models whose 'suite/name' contains one of these")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--no-ort", action="store_true")
    args = p.parse_args(argv)

    def progress(r):
        print("%-13s %-55s %.2fs %s" % (r.status + ("*" if r.via_ort else ""), r.name, r.seconds,
                                        r.reason[:200]), flush=True)

    res = run_all(args.substring, use_ort=not args.no_ort, progress=progress if args.verbose else None)
    if args.verbose:
        print(res.details())
    print(summary(res))
    return 1 if res.count("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
