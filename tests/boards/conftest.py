"""The board tests' session: which board runs the collected tests read (started together, boardtest.py),
ending them with the session, and the summary: one line per board run saying which kernel path its sessions
ran on, the versions, the largest difference from the goldens, how long it took and how many kernels numba
compiled there (none when the cache beside the root had them)."""
import boardtest


def pytest_collection_finish(session):
    """Plan (board, "models" | "nodes", path) for every collected board test: a test module names its
    ``BOARD``, its tests take the kernel path as the ``path`` parameter, and the node-suite tests are named
    so. Anything a test reads that is not planned here runs when it is read."""
    keys = set()
    for item in session.items:
        board = getattr(getattr(item, "module", None), "BOARD", None)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if board in boardtest.BOARDS and "path" in params:
            keys.add((board, "nodes" if "node_suite" in item.originalname else "models", params["path"]))
    boardtest.plan(keys)


def pytest_sessionfinish(session):
    boardtest.stop()


def pytest_terminal_summary(terminalreporter):
    if not boardtest.RUNS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("emulated boards (each runs every kernel path it has; %d at a time)" % boardtest.JOBS)
    for (board, what, path), parsed in sorted(boardtest.RUNS.items()):
        seconds = boardtest.TIMES.get((board, what, path), 0.0)
        head = "%-15s %-6s %-5s %s, Python %s, numpy %s" % (board, what, path, parsed.get("machine"),
                                                           parsed.get("python"), parsed.get("numpy"))
        compiled = parsed.get("compiled", [])
        kernels = ", %d kernels compiled (%.0f s)" % (len(compiled), sum(s for _, s in compiled)) if compiled else ""
        if what == "models":
            paths = sorted({m.get("kernels") for m in parsed.get("models", [])})
            worst = max([m.get("max_rel_diff", float("inf")) for m in parsed.get("models", [])] or [float("inf")])
            write("%s, numba %s: sessions ran %s, max rel diff %.1e, %.0f s%s" % (
                head, parsed.get("numba"), "/".join(p or "?" for p in paths), worst, seconds, kernels))
        else:
            write("%s: sessions ran %s, %d cases, %d differ, %.0f s%s" % (
                head, "/".join(sorted(parsed.get("kernels", {}))), parsed.get("cases", 0),
                len(parsed.get("failures", {})), seconds, kernels))
