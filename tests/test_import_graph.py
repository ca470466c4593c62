"""The packages' imports go one way: no module of exporter/ or tinyrt/ imports, directly or through others,
a module that imports it back.

The graph is read from the sources with ``ast`` (nothing is imported): an edge for every import statement,
at the top of a module or inside a function (a deferred import is still a dependency, only a later one).
``from package import name`` is an edge to the submodule when ``name`` is one, else to the package. A
package's ``__init__`` re-exporting its submodules is an edge like any other, so a submodule importing
from its own package's ``__init__`` closes a cycle.

Also here: no module over 500 lines in exporter/ or tinyrt/ (issue 23), with no exceptions. exporter/ has
no import cycle; the tinyrt imports that still close one are listed below by name, and the list may only
shrink.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINES = 500

# The imports in tinyrt/ that still close a cycle, each with why it is there. Nothing may join this list; an
# entry that is gone must leave it (test_known_back_edges_still_exist says so), so the list only shrinks.
KNOWN_TINYRT_BACK_EDGES = {
    # onnxruntime's module layout, mirrored: tinyrt's errors derive from capi's exception classes, while capi
    # (like onnxruntime's) hands out tinyrt's session classes and raises its UnsupportedError, on first use
    ("tinyrt.capi.onnxruntime_pybind11_state", "tinyrt"): "capi forwards onnxruntime's names to tinyrt's",
    ("tinyrt.capi.onnxruntime_pybind11_state", "tinyrt.errors"): "capi raises tinyrt's UnsupportedError",
    # get_version_string() reads tinyrt.__version__ from the package
    ("tinyrt.environment", "tinyrt"): "__version__ lives in tinyrt/__init__.py",
}

def modules(package):
    """{dotted module name: path} of every .py file under ``package``."""
    found = {}
    for folder, dirs, files in os.walk(os.path.join(ROOT, package)):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def imports_of(name, path, known):
    """The modules of ``known`` that module ``name`` (at ``path``) imports."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                while target and target not in known:      # import a.b.c: the deepest module we know
                    target = target.rpartition(".")[0]
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = source + "." + alias.name
                if submodule in known:
                    found.add(submodule)
                elif source in known:
                    found.add(source)
    found.discard(name)
    return found


def import_graph(package):
    known = modules(package)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def describe(graph, component):
    return "; ".join("%s -> %s" % (m, ", ".join(sorted(graph[m] & component))) for m in sorted(component))


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [frozenset("abc")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_exporter_imports_go_one_way():
    graph = import_graph("exporter")
    assert "exporter.train" in graph and graph["exporter.train_loop"] >= {"exporter.evaluate"}
    found = cycles(graph)
    assert not found, "import cycles in exporter/: " + " | ".join(describe(graph, c) for c in found)


def test_tinyrt_has_no_new_import_cycle():
    graph = import_graph("tinyrt")
    for (source, target) in KNOWN_TINYRT_BACK_EDGES:
        graph[source].discard(target)
    found = cycles(graph)
    assert not found, "new import cycles in tinyrt/: " + " | ".join(describe(graph, c) for c in found)


def test_known_back_edges_still_exist():
    """An import that is gone leaves KNOWN_TINYRT_BACK_EDGES, so the list only shrinks."""
    graph = import_graph("tinyrt")
    gone = [edge for edge in KNOWN_TINYRT_BACK_EDGES if edge[1] not in graph[edge[0]]]
    assert not gone, "remove these imports, gone now, from KNOWN_TINYRT_BACK_EDGES: %s" % gone


@pytest.mark.parametrize("package", ["exporter", "tinyrt"])
def test_no_module_over_500_lines(package):
    long = {}
    for name, path in modules(package).items():
        with open(path, encoding="utf-8") as f:
            count = sum(1 for _ in f)
        if count > MAX_LINES:
            long[name] = count
    assert not long, "modules over %d lines (split them by job): %s" % (MAX_LINES, long)
