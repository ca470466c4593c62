"""The board tests' summary: after the session, one line per board run saying which path its sessions ran
on, the versions, the largest difference from the goldens and how long it took (boardtest.py)."""
import boardtest


def pytest_terminal_summary(terminalreporter):
    if not boardtest.RUNS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("emulated boards (path of this pass: %s)" % boardtest.host_path())
    for (board, what), parsed in sorted(boardtest.RUNS.items()):
        seconds = boardtest.TIMES.get((board, what), 0.0)
        head = "%-15s %-6s %s, Python %s, numpy %s" % (board, what, parsed.get("machine"), parsed.get("python"),
                                                       parsed.get("numpy"))
        if what == "models":
            paths = sorted({m.get("kernels") for m in parsed.get("models", [])})
            worst = max([m.get("max_rel_diff", float("inf")) for m in parsed.get("models", [])] or [float("inf")])
            warm = parsed.get("warmup", {}).get("seconds")
            write("%s, numba %s: path %s, max rel diff %.1e, %.0f s%s" % (
                head, parsed.get("numba"), "/".join(p or "?" for p in paths), worst, seconds,
                " (warmup %.0f s)" % warm if warm is not None else ""))
        else:
            write("%s: path %s, %d cases, %d differ, %.0f s" % (
                head, "/".join(sorted(parsed.get("kernels", {}))), parsed.get("cases", 0),
                len(parsed.get("failures", {})), seconds))
