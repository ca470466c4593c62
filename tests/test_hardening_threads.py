"""Issue 7 (hardening), item 6: one session run from many threads at once gives the same results as one
thread, on both kernel paths."""
import os
import threading

import numpy as np
import pytest

import tinyrt


# item 6: one session, many threads: the same results as one thread

@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_one_session_from_many_threads(kernels):
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fuzz.seeds import seed_bytes
    options = tinyrt.SessionOptions()
    options.kernels = kernels
    sessions = {name: tinyrt.InferenceSession(seed_bytes()[name], options)
                for name in ("tiny_cnn", "control_flow", "detection_tail", "shape_chain")}
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(96):
        name = sorted(sessions)[i % len(sessions)]
        sess = sessions[name]
        feeds = {}
        for arg in sess.get_inputs():
            shape = [d if isinstance(d, int) else 1 + i % 3 for d in arg.shape]
            feeds[arg.name] = rng.standard_normal(shape).astype(np.float32)
        jobs.append((name, feeds))
    expected = [sessions[name].run(None, feeds) for name, feeds in jobs]
    got = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(8)

    def worker(k):
        try:
            barrier.wait()
            for j in range(k, len(jobs), 8):
                name, feeds = jobs[j]
                got[j] = sessions[name].run(None, feeds)
        except Exception as e:  # noqa: B902
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for a, b in zip(got, expected):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
