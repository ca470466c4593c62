"""ONNX's node conformance suite, packed for a board: every case tinyrt runs on x86, with x86 tinyrt's outputs.

    python tests/boards/node_bundle.py OUT.npz          # on x86 (needs onnx): write the bundle
    python3 board_suite.py OUT.npz                      # on the board: rerun every case, compare

The board models exercise the ops a CNN uses; this exercises every op tinyrt implements, on the board's
Python and numpy: numpy 1.19 lacking an API an op uses, 32-bit ``intp`` on armv7, another libm or BLAS. The
reference is tinyrt itself on x86 (not onnx's expected outputs: whether tinyrt is right is the node suite's
business on x86; here the question is only whether the board computes what x86 computes). Cases whose
arrays are large (over ``MAX_BYTES``), that tinyrt refuses or fails on x86, or that feed sequences or
optionals are left out. The bundle is rebuilt for each test run (a few seconds) and never committed.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
MAX_BYTES = 200000   # inputs + outputs of a case; the few bigger cases would only slow the emulated run
TIMEOUT = 5.0


def _host_outputs(tinyrt, node_suite, model, data_sets, timeout):
    """(feed names, [outputs per data set]) of one case run by tinyrt here, or None (failed, timed out).

    Its own function, so that each case's thread writes into its own ``box``: a thread that times out
    runs on, and in a loop body its late result would land in the next case's box (it did, on a loaded
    machine: MaxPool ceil's outputs recorded as MaxPool same_upper's)."""
    def host_run():
        sess = tinyrt.InferenceSession(model)
        feeds = [i.name for i in sess.get_inputs()]
        outs = []
        for ins, _ in data_sets:
            if len(ins) != len(feeds):
                raise ValueError("inputs")
            got = sess.run(None, dict(zip(feeds, ins)))
            if not all(isinstance(g, np.ndarray) for g in got):
                raise ValueError("outputs")
            outs.append(got)
        return feeds, outs

    box = {}

    def target():
        try:
            with np.errstate(all="ignore"):
                box["r"] = host_run()
        except Exception:
            pass

    node_suite.run_with_timeout(target, timeout)
    return box.get("r")


def build(out_path, max_bytes=MAX_BYTES, timeout=TIMEOUT):
    """Write the bundle; return (cases written, cases left out)."""
    if TESTS not in sys.path:
        sys.path.insert(0, TESTS)
    import node_suite
    import tinyrt

    arrays, names = {}, []
    left_out = 0
    for case in node_suite.collect_cases():
        data_sets = [([node_suite._normalize(x) for x in ins], [node_suite._normalize(x) for x in outs])
                     for ins, outs in case.data_sets]
        flat = [x for ins, outs in data_sets for x in list(ins) + list(outs)]
        if not flat or not all(isinstance(x, np.ndarray) and x.dtype.kind in "biufc" for x in flat) \
                or sum(x.nbytes for x in flat) > max_bytes:
            left_out += 1
            continue
        model = case.model.SerializeToString()
        result = _host_outputs(tinyrt, node_suite, model, data_sets, timeout)
        if result is None:
            left_out += 1
            continue
        feeds, outs = result
        c = "c%d_" % len(names)
        names.append(case.name)
        arrays[c + "model"] = np.frombuffer(model, dtype=np.uint8)
        arrays[c + "feeds"] = np.array(feeds, dtype=str)
        arrays[c + "sets"] = np.array(len(data_sets))
        for k, ((ins, _), got) in enumerate(zip(data_sets, outs)):
            arrays[c + "nout%d" % k] = np.array(len(got))
            for j, x in enumerate(ins):
                arrays[c + "in%d_%d" % (k, j)] = x
            for j, y in enumerate(got):
                arrays[c + "out%d_%d" % (k, j)] = y
    arrays["names"] = np.array(names)
    np.savez(out_path, **arrays)
    return len(names), left_out


if __name__ == "__main__":
    n, skipped = build(sys.argv[1])
    print("%s: %d cases (%d left out)" % (sys.argv[1], n, skipped))
