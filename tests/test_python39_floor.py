"""tinyrt/ and kernels/ use nothing newer than Python 3.9 (and, as far as a static look can tell, numpy 1.19).

Raspberry Pi OS 32-bit (bullseye) ships Python 3.9.2 and numpy 1.19.5, and tinyrt must run there from a copied
folder. Three static checks over every ``.py`` file of ``tinyrt/`` and ``kernels/``:

1. vermin (``pip install vermin``, in the ``dev`` extra) with target 3.9: syntax, standard-library modules,
   members and keyword arguments newer than 3.9 (``match``, ``zip(strict=)``, ``itertools.pairwise``,
   ``tomllib``, ``X | Y`` unions with annotations evaluated, as Python 3.9 does without
   ``from __future__ import annotations``);
2. the interpreter's own parser with ``feature_version=(3, 9)``, and ``X | Y`` in any annotation of a module
   without ``from __future__ import annotations`` (Python 3.9 evaluates it at definition time: TypeError);
3. numpy APIs newer than 1.19 that are easy to reach for (numpy 2 names such as ``np.concat``,
   ``np.astype``, ``np.trapezoid``; ``sliding_window_view`` (1.20); keywords such as ``copy=`` on
   ``np.asarray`` (2.0), ``keepdims=`` on ``argmax`` (1.22), ``where=`` on ``np.mean`` (1.20), ``dtype=`` on
   ``np.concatenate`` (1.20)). This list cannot be complete; the emulated armv7 run (tests/boards/) is
   what proves numpy 1.19 really works, on the code paths the board models take.
"""
import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("tinyrt", "kernels")


def python_files():
    out = []
    for folder in FOLDERS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(REPO, folder)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            out += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py")]
    return sorted(out)


def _rel(path):
    return os.path.relpath(path, REPO)


def test_vermin_python_3_9():
    try:
        import vermin  # noqa: F401
    except ImportError:
        pytest.fail("vermin is not installed: pip install -e '.[dev]' (or pip install vermin)", pytrace=False)
    cmd = [sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())",
           "-t=3.9-", "--violations", "--no-tips", "--eval-annotations", "--feature", "union-types",
           "--processes=1"] + [os.path.join(REPO, f) for f in FOLDERS]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=300)
    assert proc.returncode == 0, "vermin finds code newer than Python 3.9 in tinyrt/ or kernels/:\n" + proc.stdout


def _future_annotations(tree):
    return any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and
               any(a.name == "annotations" for a in n.names) for n in tree.body)


def _annotations(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
                if a is not None and a.annotation is not None:
                    yield a.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


@pytest.mark.parametrize("path", python_files(), ids=_rel)
def test_parses_as_python_3_9(path):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path, feature_version=(3, 9))
    except SyntaxError as e:
        pytest.fail("%s:%s: not Python 3.9 syntax: %s" % (_rel(path), e.lineno, e.msg), pytrace=False)
    if not _future_annotations(tree):
        bad = ["%s:%d" % (_rel(path), a.lineno) for a in _annotations(tree)
               if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(a))]
        assert not bad, ("`X | Y` in annotations fails on Python 3.9 (evaluated at definition time); use "
                         "typing.Optional/Union or a string: %s" % ", ".join(bad))


# numpy attributes that numpy 1.19 does not have (version added); removed aliases tinyrt must not use either
NEWER_NUMPY = {
    "concat": "2.0", "astype": "2.0", "trapezoid": "2.0", "cumulative_sum": "2.1", "cumulative_prod": "2.1",
    "isdtype": "2.0", "unstack": "2.1", "matrix_transpose": "2.0", "vecdot": "2.0", "permute_dims": "2.0",
    "pow": "2.0", "acos": "2.0", "asin": "2.0", "atan": "2.0", "acosh": "2.0", "asinh": "2.0",
    "atanh": "2.0", "atan2": "2.0", "bitwise_left_shift": "2.0", "bitwise_right_shift": "2.0",
    "bitwise_invert": "2.0", "unique_values": "2.0", "unique_counts": "2.0", "unique_inverse": "2.0",
    "unique_all": "2.0", "long": "2.0", "ulong": "2.0", "exceptions": "1.25", "dtypes": "1.25",
    "strings": "2.0", "array_utils": "2.0", "sliding_window_view": "1.20", "matvec": "2.2", "vecmat": "2.2",
    "bool": "removed in 1.24 (use np.bool_)", "int": "removed in 1.24", "float": "removed in 1.24",
    "complex": "removed in 1.24", "object": "removed in 1.24", "str": "removed in 1.24",
}
# (function or method, keyword): version that added the keyword
NEWER_KEYWORDS = {
    ("asarray", "copy"): "2.0", ("asanyarray", "copy"): "2.0", ("reshape", "copy"): "2.1",
    ("argmax", "keepdims"): "1.22", ("argmin", "keepdims"): "1.22",
    ("mean", "where"): "1.20", ("std", "where"): "1.20", ("var", "where"): "1.20",
    ("nanmean", "where"): "1.22", ("concatenate", "dtype"): "1.20", ("concatenate", "casting"): "1.20",
    ("stack", "dtype"): "1.24", ("vstack", "dtype"): "1.24", ("hstack", "dtype"): "1.24",
    ("percentile", "method"): "1.22", ("quantile", "method"): "1.22", ("unique", "equal_nan"): "1.24",
    ("sort", "stable"): "2.0", ("argsort", "stable"): "2.0", ("clip", "min"): "2.1", ("clip", "max"): "2.1",
    ("array", "like"): "1.20", ("asarray", "like"): "1.20", ("arange", "like"): "1.20",
    ("zeros", "like"): "1.20", ("ones", "like"): "1.20", ("full", "like"): "1.20", ("empty", "like"): "1.20",
}
NUMPY_NAMES = ("np", "numpy")


@pytest.mark.parametrize("path", python_files(), ids=_rel)
def test_numpy_1_19_static(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in NUMPY_NAMES:
            if node.attr in NEWER_NUMPY:
                bad.append("%s:%d: np.%s (numpy %s)" % (_rel(path), node.lineno, node.attr, NEWER_NUMPY[node.attr]))
        if isinstance(node, ast.Attribute) and node.attr in ("sliding_window_view", "array_utils"):
            bad.append("%s:%d: %s (numpy %s)" % (_rel(path), node.lineno, node.attr, NEWER_NUMPY[node.attr]))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("numpy"):
            for a in node.names:
                if a.name in NEWER_NUMPY and a.name not in ("bool", "int", "float", "complex", "object", "str"):
                    bad.append("%s:%d: from %s import %s" % (_rel(path), node.lineno, node.module, a.name))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            is_np = isinstance(f.value, ast.Name) and f.value.id in NUMPY_NAMES
            for kw in node.keywords:
                since = NEWER_KEYWORDS.get((f.attr, kw.arg))
                # np.f(..., kw=) always; x.f(..., kw=) for the methods whose keyword is numpy-only
                if since and (is_np or (f.attr, kw.arg) in (("argmax", "keepdims"), ("argmin", "keepdims"),
                                                            ("reshape", "copy"))):
                    bad.append("%s:%d: %s(%s=...) (numpy %s)" % (_rel(path), node.lineno, f.attr, kw.arg, since))
    assert not bad, "numpy APIs newer than 1.19 (Raspberry Pi OS bullseye):\n  " + "\n  ".join(bad)
