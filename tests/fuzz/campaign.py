"""A fuzz campaign: many mutants, run in worker processes watched by the parent.

Each worker generates its share of the cases itself (case ``i`` is the same bytes everywhere, see
``Mutator.case``), tells the parent when it starts and ends each one, and measures the case's peak
memory with tracemalloc (numpy reports its buffers to tracemalloc). The parent kills a worker whose
case runs past ``timeout`` seconds (a hang) and restarts it after that case; a worker that dies (a
crash) is restarted the same way. Findings:

    foreign   an exception that is not a tinyrt.TinyrtError
    internal  a ModelError from the session's safety net (an exception nothing foresaw, wrapped)
    oom       numpy ran out of memory (the worker's address space is capped, see ``MEMORY_CAP``)
    memory    a case whose peak traced memory passed ``memory_bound(file size)``
    slow      a case that took more than ``slow`` seconds of CPU but finished
    hang      a case killed after ``timeout`` seconds (of the wall clock), and again when it ran once more,
              alone in a fresh worker, for ``CONFIRM`` times as long (a loaded machine can stall a case
              that takes 0.2 s of CPU for seconds: that is not a hang)
    crash     the worker died (a segfault in numpy or numba, say)
"""
import collections
import multiprocessing
import os
import sys
import time
import traceback

CONFIRM = 6           # a stalled case runs once more, alone, for this many times the timeout
MEMORY_CAP = 6 << 30   # address space of a worker: a runaway allocation fails instead of eating the machine
PEAK_LIMIT = 3 << 30   # no case may trace more than this (the bound)


def memory_bound(file_size):
    """What one case may allocate at its peak: tinyrt's automatic tensor limit is 16 MiB for small files
    (64 x the file and feeds beyond that), a few tensors live at once, and ops make temporaries."""
    return max(256 << 20, 1024 * file_size)


def _limit_address_space():
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = MEMORY_CAP if hard == resource.RLIM_INFINITY else min(MEMORY_CAP, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass


def _classify(exc):
    import tinyrt
    if not isinstance(exc, tinyrt.TinyrtError):
        return "foreign"
    text = str(exc)
    if text.startswith("tinyrt could not prepare this model") or "tinyrt bug" in text:
        return "internal"
    if "ran out of memory" in text:
        return "oom"
    return None


def make_generator(generator, base_seed):
    """The case stream: "mutants" of the seed models (mutators.py) or "semantic" graphs (semantic.py)."""
    if generator == "semantic":
        from .semantic import Semantic
        return Semantic(base_seed)
    from .mutators import Mutator
    from .seeds import seed_bytes
    return Mutator(seed_bytes(), base_seed)


def _worker(conn, base_seed, indices, slow, kernels, generator="mutants", stall=None):
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    _limit_address_space()
    import tracemalloc
    from .harness import run_case
    import tinyrt
    options = None
    if kernels:
        options = tinyrt.SessionOptions()
        options.kernels = kernels
    mutator = make_generator(generator, base_seed)
    for data in mutator.seeds:  # warm up (numba compiles its kernels once) before the clock starts
        run_case(data, options)
    conn.send(("ready",))
    for i in indices:
        name, data = mutator.case(i)  # made untraced: tracemalloc slows Python's allocations 5x
        conn.send(("start", i))
        if stall is not None and i == stall[0]:
            time.sleep(stall[1])  # the watchdog's test: a case that takes this long on the wall clock
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        cpu = time.process_time()  # "slow" is CPU time: on a shared machine the wall clock counts others' work
        finding = detail = None
        try:
            outcome = run_case(data, options)
        except BaseException as e:  # noqa: B902 - everything counts, even SystemExit from a bug
            outcome = "raised %s" % type(e).__name__
            finding = _classify(e) or "foreign"
            detail = "%s: %s\n%s" % (type(e).__name__, str(e)[:300], "".join(traceback.format_tb(e.__traceback__)[-4:]))
        seconds = time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
        if finding is None and peak > min(PEAK_LIMIT, memory_bound(len(data))):
            finding, detail = "memory", "peak %d bytes for a %d-byte file" % (peak, len(data))
        elif finding is None and seconds > slow:
            # tracemalloc makes allocation-heavy cases (inlining thousands of function nodes) several times
            # slower: a case is slow by what it costs untraced, so it runs once more without it
            cpu = time.process_time()
            run_case(data, options)
            seconds = time.process_time() - cpu
            if seconds > slow:
                finding, detail = "slow", "%.1f s untraced" % seconds
        conn.send(("done", i, name, len(data), outcome, peak, seconds, finding, detail))
    conn.send(("finished",))


class Result:
    def __init__(self):
        self.cases = 0
        self.outcomes = collections.Counter()
        self.findings = []          # (kind, case, seed name, detail)
        self.max_peak = (0, None)   # (bytes, case)
        self.max_seconds = (0.0, None)
        self.seconds = 0.0
        self.by_seed = collections.Counter()
        self.stalls = 0             # cases past the timeout that finished when run again alone

    def summary(self):
        lines = ["fuzz campaign: %d models in %.1f s (%.0f a second), %d findings"
                 % (self.cases, self.seconds, self.cases / max(self.seconds, 1e-9), len(self.findings)),
                 "  peak traced memory of one case: %.1f MiB (case %s); slowest case: %.2f s of CPU (case %s)"
                 % (self.max_peak[0] / 2 ** 20, self.max_peak[1], self.max_seconds[0], self.max_seconds[1])]
        if self.stalls:
            lines.append("  %d case(s) stalled past the timeout and finished when run again alone (a loaded "
                         "machine, not a hang)" % self.stalls)
        for outcome, n in self.outcomes.most_common():
            lines.append("  %6d  %s" % (n, outcome))
        for kind, case, name, detail in self.findings[:20]:
            lines.append("  FINDING %s: case %s (seed %s): %s" % (kind, case, name, (detail or "").strip()[:600]))
        return "\n".join(lines)


def run(cases=20000, start=0, workers=2, base_seed=0, timeout=5.0, slow=5.0, minutes=None, kernels=None,
        progress=None, generator="mutants", confirm=CONFIRM, stall=None):
    """Run cases ``start .. start + cases`` (or as many as fit in ``minutes``) over ``workers`` processes.

    ``stall``: (case, seconds) that case sleeps first, in every worker that runs it (tests of the hang
    watchdog)."""
    ctx = multiprocessing.get_context("spawn")
    result = Result()
    deadline = None if minutes is None else time.monotonic() + 60.0 * minutes
    if minutes is not None:
        cases = 10 ** 9
    streams = [range(start + k, start + cases, workers) for k in range(workers)]
    procs = {}

    def start(indices):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(child, base_seed, indices, slow, kernels, generator, stall),
                        daemon=True)
        p.start()
        child.close()
        # wait for it to be ready (imports and warm-up are not part of any case's time)
        if not parent.poll(300):
            p.kill()
            raise RuntimeError("fuzz worker did not start")
        msg = parent.recv()
        assert msg[0] == "ready", msg
        return p, parent

    def launch(k, indices):
        p, parent = start(indices)
        procs[k] = {"proc": p, "conn": parent, "indices": indices, "current": None, "since": None}

    def alone(i):
        """Case ``i`` once more in a fresh worker: its "done" message, or None if it stalls again."""
        p, conn = start([i])
        msg = None
        until = time.monotonic() + confirm * timeout
        while time.monotonic() < until:
            try:
                if conn.poll(0.05):
                    got = conn.recv()
                    if got[0] == "done":
                        msg = got
                        break
                elif not p.is_alive():
                    break
            except (EOFError, OSError):  # it died: a crash, which the first worker's restart does not see
                break
        p.kill()
        p.join(10)
        return msg

    t0 = time.monotonic()
    for k in range(workers):
        launch(k, streams[k])
    last_report = t0
    while procs:
        if deadline is not None and time.monotonic() > deadline:
            for w in procs.values():
                w["proc"].kill()
            break
        for k in list(procs):
            w = procs[k]
            conn = w["conn"]
            try:
                ready = conn.poll(0.05)
            except (EOFError, OSError):
                ready = True
            if ready:
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    msg = ("died",)
                if msg[0] == "start":
                    w["current"], w["since"] = msg[1], time.monotonic()
                elif msg[0] == "done":
                    _record(result, msg)
                    w["current"] = None
                elif msg[0] == "finished":
                    w["proc"].join(10)
                    del procs[k]
                elif msg[0] == "died":
                    _restart(k, w, "crash", "worker exited with code %s" % w["proc"].exitcode, result, launch)
            elif w["current"] is not None and time.monotonic() - w["since"] > timeout:
                i = w["current"]
                w["proc"].kill()
                again = alone(i)
                if again is None:
                    _restart(k, w, "hang", "no answer after %.0f s, nor after %.0f s alone"
                             % (timeout, confirm * timeout), result, launch)
                else:
                    _record(result, again)
                    result.stalls += 1
                    _restart(k, w, None, None, result, launch)
            elif not w["proc"].is_alive() and not conn.poll(0):
                _restart(k, w, "crash", "worker exited with code %s" % w["proc"].exitcode, result, launch)
        if progress and time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            progress("%d cases, %d findings, %.0f s" % (result.cases, len(result.findings), last_report - t0))
    result.seconds = time.monotonic() - t0
    return result


def _record(result, msg):
    """A worker's "done" message, counted."""
    _, i, name, size, outcome, peak, seconds, finding, detail = msg
    result.cases += 1
    result.by_seed[name] += 1
    result.outcomes[outcome.split(":")[0] if outcome.startswith("not run") else outcome] += 1
    if peak > result.max_peak[0]:
        result.max_peak = (peak, i)
    if seconds > result.max_seconds[0]:
        result.max_seconds = (seconds, i)
    if finding:
        result.findings.append((finding, i, name, detail))


def _restart(k, w, kind, detail, result, launch):
    """Worker ``k`` again, from the case after its current one; ``kind``: the finding that case was (None:
    it was counted already)."""
    w["proc"].kill()
    w["proc"].join(10)
    i = w["current"]
    if kind is not None:
        result.findings.append((kind, i, "?", detail))
        result.cases += 1
        result.outcomes[kind] += 1
    rest = [j for j in w["indices"] if i is None or j > i]
    del_ok = rest if i is not None else []
    launch(k, del_ok)


def replay(case, base_seed=0, kernels=None, generator="mutants"):
    """Run one case in this process, with its traceback: ``python -m tests.fuzz --replay N``."""
    import tinyrt
    from .harness import run_case
    options = None
    if kernels:
        options = tinyrt.SessionOptions()
        options.kernels = kernels
    name, data = make_generator(generator, base_seed).case(case)
    print("case %d: seed %s, %d bytes" % (case, name, len(data)))
    t = time.perf_counter()
    print(run_case(data, options))
    print("%.2f s" % (time.perf_counter() - t))
    return data


def save(case, path, base_seed=0, generator="mutants"):
    _, data = make_generator(generator, base_seed).case(case)
    with open(path, "wb") as f:
        f.write(data)
    return os.path.abspath(path)
