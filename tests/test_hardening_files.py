"""Issue 21 (hardening, round two), files: items 2 (a link or FIFO swapped in for external data between the
checks and the open), 9 (a FIFO as the model), 11 (an external length of 3 GiB for dims [1]), 12 (many
initializers on one external range), 13 (/dev/zero as the model). Pictures, checkpoints and classes files
are in test_hardening_pictures.py and test_hardening_writes.py."""
import os
import threading
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tinyrt
from bounded import check_bounded
from hardening_models import F, vi

X = {"x": np.ones(1, np.float32)}
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def external_model(folder, entries, name="model.onnx"):
    """A model whose outputs are initializers kept in external data: ``entries`` [(name, dims, location,
    offset, length)]; the graph adds each to its input x (a float of shape [1]), so nothing is folded at load."""
    inits, nodes, outputs = [], [], []
    for key, dims, location, offset, length in entries:
        t = onnx.TensorProto(name=key, data_type=F, dims=list(dims), data_location=TensorProto.EXTERNAL)
        for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        inits.append(t)
        nodes.append(helper.make_node("Add", [key, "x"], ["out_" + key]))
        outputs.append(vi("out_" + key, None))
    graph = helper.make_graph(nodes, "g", [vi("x", [1])], outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path = os.path.join(str(folder), name)
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    return path


# --- item 2: the race between the path checks and open() ----------------------------------------------------

def _swapper(folder, make_other, stop):
    """Swap w.bin between the real weights and ``make_other(path)`` (a link out, a FIFO) until ``stop``."""
    good = np.arange(4, dtype=np.float32).tobytes()
    target = os.path.join(folder, "w.bin")
    n = 0
    while not stop.is_set():
        n += 1
        tmp = os.path.join(folder, "tmp%d" % (n % 2))
        make_other(tmp)
        os.replace(tmp, target)
        with open(tmp, "wb") as f:
            f.write(good)
        os.replace(tmp, target)
    return n


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["link out of the folder", "fifo"])
def test_external_data_swapped_while_loading(tmp_path, kind):
    if kind == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    inside = tmp_path / "model"
    inside.mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.full(4, 42.0, np.float32).tobytes())
    (inside / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    path = external_model(inside, [("w", [4], "w.bin", 0, 16)])
    make = (lambda p: os.symlink(str(secret), p)) if kind != "fifo" else os.mkfifo
    # the loads run in a child with a time limit: a blocking open() fails the test instead of hanging it
    out = check_bounded("""
        import os, threading, time, numpy as np, tinyrt, sys
        sys.path.insert(0, "tests")
        from test_hardening_files import _swapper, X
        make = %s
        stop = threading.Event()
        swapper = threading.Thread(target=_swapper, args=(%r, make, stop))
        swapper.start()
        loads = refused = 0
        end = time.time() + 8
        try:
            while time.time() < end and loads < 3000:
                loads += 1
                try:
                    y = tinyrt.InferenceSession(%r).run(None, X)[0]
                except tinyrt.ModelError:
                    refused += 1
                    continue
                assert (y == 1 + np.arange(4, dtype=np.float32)).all(), "read another file: %%s" %% y
        finally:
            stop.set()
            swapper.join()
        print(loads, refused)
        """ % ("os.mkfifo" if kind == "fifo" else "lambda p: os.symlink(%r, p)" % str(secret), str(inside), path),
        timeout=60, memory_mb=1024)
    loads, refused = map(int, out.split())
    assert loads > 50 and refused > 0  # the swap did happen under the loads, and was refused each time


def test_a_link_inside_the_folder_still_works(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "real.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    os.symlink("data/real.bin", str(tmp_path / "w.bin"))
    path = external_model(tmp_path, [("w", [4], "w.bin", 0, 16)])
    np.testing.assert_array_equal(tinyrt.InferenceSession(path).run(None, X)[0], 1 + np.arange(4))


# --- item 9 and 13: a FIFO or a device as the model -----------------------------------------------------------

@needs_fifo
def test_a_fifo_as_the_model_is_refused_at_once(tmp_path):
    fifo = str(tmp_path / "model.onnx")
    os.mkfifo(fifo)
    check_bounded("""
        import tinyrt
        try:
            tinyrt.InferenceSession(%r)
            raise SystemExit("loaded")
        except tinyrt.ModelError as e:
            assert "FIFO" in str(e), e
        """ % fifo, timeout=60, memory_mb=512)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_as_the_model_is_refused_at_once():
    check_bounded("""
        import tinyrt
        try:
            tinyrt.InferenceSession("/dev/zero")
            raise SystemExit("loaded")
        except tinyrt.ModelError as e:
            assert "not a regular file" in str(e), e
        """, timeout=60, memory_mb=512)


# --- item 11: the external length is checked against the dims before reading ------------------------------------

def test_an_external_length_far_beyond_the_dims_reads_nothing(tmp_path):
    with open(str(tmp_path / "w.bin"), "wb") as f:
        f.truncate(3 << 30)  # a sparse 3 GiB file: takes no disk, would take 3 GiB to read
    path = external_model(tmp_path, [("w", [1], "w.bin", 0, 3 << 30)])
    check_bounded("""
        import tinyrt
        try:
            tinyrt.InferenceSession(%r)
            raise SystemExit("loaded")
        except tinyrt.ModelError as e:
            assert "need 4 bytes" in str(e), e
        """ % path, timeout=60, memory_mb=512)


# --- item 12: many initializers on one external range ----------------------------------------------------------

@pytest.mark.slow
def test_initializers_sharing_one_range_share_its_memory(tmp_path):
    n, size = 1500, 1 << 20
    (tmp_path / "w.bin").write_bytes(np.arange(size // 4, dtype=np.float32).tobytes())
    path = external_model(tmp_path, [("w%d" % i, [size // 4], "w.bin", 0, size) for i in range(n)])
    # What loading allocates, traced (numpy reports its buffers to tracemalloc); not the process's peak RSS,
    # which also counts importing numba and its libraries and differs from one machine to the next.
    out = check_bounded("""
        import tracemalloc, tinyrt
        tracemalloc.start()
        sess = tinyrt.InferenceSession(%r)
        print(sess.model.nbytes, sess._tensor_limit(0), tracemalloc.get_traced_memory()[1])
        """ % path, timeout=120, memory_mb=1024)
    nbytes, limit, peak = map(int, out.split())
    assert nbytes < os.path.getsize(path) + 2 * size  # the range counts once in the model's size...
    assert limit == max(16 << 20, 64 * nbytes)      # ... so the limits stay those of a small model
    assert peak < 100 << 20                          # was 1.6 GB: one array and views of it


def test_overlapping_external_ranges_are_refused(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.zeros(64, np.float32).tobytes())
    path = external_model(tmp_path, [("a", [8], "w.bin", 0, 32), ("b", [8], "w.bin", 16, 32)])
    with pytest.raises(tinyrt.ModelError, match="overlaps"):
        tinyrt.InferenceSession(path)


def test_shared_and_separate_ranges_give_the_right_values(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.arange(16, dtype=np.float32).tobytes())
    path = external_model(tmp_path, [("a", [4], "w.bin", 0, 16), ("b", [2, 2], "w.bin", 0, 16),
                                     ("c", [4], "w.bin", 16, 16), ("d", [4], "w.bin", 48, 16)])
    a, b, c, d = tinyrt.InferenceSession(path).run(None, X)
    np.testing.assert_array_equal(a, 1 + np.arange(4))
    np.testing.assert_array_equal(b, 1 + np.arange(4).reshape(2, 2))
    np.testing.assert_array_equal(c, 1 + np.arange(4, 8))
    np.testing.assert_array_equal(d, 1 + np.arange(12, 16))
