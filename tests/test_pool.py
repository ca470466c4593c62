"""The kernels' thread pool (kernels/_pool.py): every block runs exactly once, on whichever threads join;
errors on a worker reach the caller; the pool stays usable after them."""
import numpy as np
import pytest

pytest.importorskip("numba")
from numba import njit  # noqa: E402

import kernels  # noqa: E402
from kernels import _sync  # noqa: E402

kernels.load()
POOL = kernels.POOL


@njit(nogil=True)
def count_blocks(hits, spin, ctr):
    """hits[t] += 1 for each block t, after ``spin`` steps of busy work (so that a worker has time to join)."""
    total = hits.shape[0]
    me, t = _sync.start(ctr, total)
    while t < total:
        s = 0.0
        for i in range(spin):
            s += np.sqrt(i + s)
        hits[t] += 1 if s >= 0 else 2
        t = _sync.finished(ctr, me, total)
    return total


@njit(nogil=True)
def fail_on_block(bad, hits, ctr):
    total = hits.shape[0]
    me, t = _sync.start(ctr, total)
    while t < total:
        if t == bad:
            raise ValueError("block failed")
        hits[t] += 1
        t = _sync.finished(ctr, me, total)
    return total


@pytest.fixture
def pool2():
    width = POOL.begin(2)
    try:
        yield width
    finally:
        POOL.end()


@pytest.mark.parametrize("blocks", [0, 1, 2, 3, 17, 256])
def test_every_block_runs_once(pool2, blocks):
    for _ in range(20):
        hits = np.zeros(blocks, np.int64)
        POOL.run(count_blocks, (hits, 2000))
        assert (hits == 1).all()


def test_serial_run_takes_every_block():
    hits = np.zeros(33, np.int64)
    POOL.run(count_blocks, (hits, 10), parallel=False)
    assert (hits == 1).all()


def test_a_worker_joins(pool2):
    if pool2 < 2:
        pytest.skip("one core: the pool has no worker")
    joined = POOL.ctr[_sync.JOINED]
    for _ in range(20):
        POOL.run(count_blocks, (np.zeros(64, np.int64), 20000))
    assert POOL.ctr[_sync.JOINED] > joined


def test_failure_on_any_thread_is_raised_and_the_pool_recovers(pool2):
    for bad in (0, 63):  # the caller's first block, and (usually) one a worker takes
        with pytest.raises((ValueError, RuntimeError), match="block failed"):
            POOL.run(fail_on_block, (bad, np.zeros(64, np.int64)))
        hits = np.zeros(64, np.int64)
        POOL.run(count_blocks, (hits, 100))
        assert (hits == 1).all()


@njit(nogil=True)
def fail_on_worker(waited, ctr):
    """A task of no blocks whose threads meet (as kernels/segment.py's layers do): a worker raises, and the
    caller, waiting for it, must see the task fail rather than wait for ever."""
    me, _ = _sync.start(ctr, 0)
    if me != 0:
        raise ValueError("worker failed")
    for i in range(200000000):  # (bounded: a worker may not join at all)
        if _sync.load(ctr, _sync.FAILED) != 0 or _sync.load(ctr, _sync.CHUNK) >= _sync.STOPPED:
            waited[0] = 1
            break
        _sync.pause()
    return 0


def test_a_worker_failing_in_a_task_of_no_blocks_is_raised(pool2):
    if pool2 < 2:
        pytest.skip("one core: the pool has no worker")
    for _ in range(5):
        waited = np.zeros(1, np.int64)
        raised = None
        try:
            POOL.run(fail_on_worker, (waited,))
        except RuntimeError as e:
            raised = e
        if waited[0]:  # the worker joined and failed, the caller saw it: the run must say so
            assert raised is not None and "worker failed" in str(raised)
            break
    else:
        pytest.skip("no worker joined in 5 tries")
    hits = np.zeros(64, np.int64)
    POOL.run(count_blocks, (hits, 100))
    assert (hits == 1).all()


def test_nested_runs_keep_the_outer_width():
    assert POOL.begin(2) == POOL.begin(1)
    POOL.end()
    hits = np.zeros(40, np.int64)
    POOL.run(count_blocks, (hits, 100))
    assert (hits == 1).all()
    POOL.end()
    assert (POOL.width, POOL.depth) == (1, 0)


def test_in_turn_waits_for_the_threads_before_it_and_no_longer_than_its_patience():
    """A segment's thread enters a layer after the threads numbered below it (so that start gives it its own
    number, and its own rows), but a thread that does not come is not waited for past the patience."""
    ctr = _sync.counters(3)
    assert _sync.in_turn(ctr, 0, 0)  # thread 0 waits for nobody
    assert not _sync.in_turn(ctr, 1, 1000)  # nobody has entered: thread 1 gives up
    assert _sync.start(ctr, 6) == (0, 0)  # thread 0 enters, the first chunk's first block
    assert _sync.in_turn(ctr, 1, 0) and not _sync.in_turn(ctr, 2, 1000)
    assert _sync.start(ctr, 6)[0] == 1 and _sync.in_turn(ctr, 2, 0)


def test_the_pool_measures_its_patience_once_it_runs_threads(pool2):
    if pool2 < 2:
        pytest.skip("one core: the pool runs no threads")
    assert POOL.ctr[_sync.PATIENCE] > 0
