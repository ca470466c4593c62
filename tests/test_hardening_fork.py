"""Issue 21 (hardening, round two), item 8: fork() while another thread is inside run() left the child's
first run waiting for ever on a lock held by a thread the child does not have. Both kernel paths; the
fork happens in a bounded child process, and the forked grandchild must finish its run within seconds."""
import os

import pytest

from bounded import check_bounded


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this system")
@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_a_fork_during_a_run_leaves_a_usable_child(kernels):
    out = check_bounded("""
        import os, sys, threading, time
        import numpy as np
        sys.path.insert(0, "tests")
        import tinyrt
        from fuzz.seeds import tiny_cnn
        options = tinyrt.SessionOptions()
        options.kernels = %r
        options.intra_op_num_threads = 2
        sess = tinyrt.InferenceSession(tiny_cnn().SerializeToString(), options)
        x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
        want = sess.run(None, {"x": x})[0]
        stop = threading.Event()
        inside = threading.Event()

        def keep_running():
            while not stop.is_set():
                inside.set()
                sess.run(None, {"x": x})

        t = threading.Thread(target=keep_running)
        t.start()
        inside.wait()
        usable = 0
        for attempt in range(5):
            time.sleep(0.01)
            pid = os.fork()
            if pid == 0:  # the child: its first run must not wait for the parent's thread
                import signal
                signal.alarm(20)
                got = sess.run(None, {"x": x})[0]
                os._exit(0 if np.allclose(got, want, atol=1e-5) else 3)
            deadline = time.time() + 30
            while time.time() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                status = -1
            usable += status == 0
        stop.set()
        t.join()
        print(usable)
        """ % kernels, timeout=240, memory_mb=2048)
    assert out.split()[-1] == "5"
