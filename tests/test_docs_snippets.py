"""Every shell command and Python snippet of README.md and docs/*.md runs as written.

What counts as a snippet:
  * a fenced ```python block: run as one script;
  * a `$ command` line in a fenced block without a language (or console/shell/sh/bash), or in an indented
    block: run in the shell (the lines after it are its output);
  * an indented block whose lines start with a command (make, tinyrt, python, .venv/bin/python, cp, ...):
    each line run in the shell; usage lines are run with their placeholders filled in (MODEL.onnx, PICTURE,
    x.npy: see PLACEHOLDERS) and their optional ``[...]`` parts left out.

Where: a copy of the repository's files in a temporary folder, with ``.venv`` pointing at this Python's
environment and ``HOME`` inside the folder (``cp -r tinyrt/ ~/myproject/`` copies there). The documents run
in the order a reader meets them; first the demo is made the way the README says (`make demo` is
``python -m exporter demo`` once the environment exists), and the files the docs name as the reader's own
(``catdog.onnx``, ``cat.jpg``: see READER_FILES) are put there from the demo's outputs.

Commands that cannot run here are in NOT_RUN with the reason (the whole test suite, system packages, the
emulated boards, which have their own tests). docs/coming-from-mmedu.md's Python is run, in order and with
its printed output checked, by tests/test_vision_docs.py. A command in ADJUST runs with the arguments given
there, and a Python snippet in ADJUST_PYTHON with the change given there (a smaller synthetic dataset, one
training epoch instead of ten: the test must stay well under a few minutes in CI).
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md"] + sorted(os.path.join("docs", n) for n in os.listdir(os.path.join(ROOT, "docs"))
                              if n.endswith(".md"))

COMMAND_WORDS = ("make", "tinyrt", "python", "python3", ".venv/bin/python", "sudo", "cp", "pip", "git")
SHELL_LANGS = ("", "console", "shell", "sh", "bash")

SAMPLE = "exporter/pretrained/samples/cls_star.jpg"
DEMO_CLS = "out/demo/shapes_cls.onnx"
PLACEHOLDERS = [                       # (usage word, what a reader would type) in usage lines
    ("MODEL.onnx", DEMO_CLS), ("MODEL", DEMO_CLS), ("PICTURE...", SAMPLE), ("PICTURE", SAMPLE),
    ("DATASET/test_set", "out/shapes_cls/test_set"),
]
READER_FILES = {                       # the reader's own files the docs name, from the demo's outputs
    "catdog.onnx": DEMO_CLS, "out/catdog.onnx": DEMO_CLS, "out_file/catdog.onnx": DEMO_CLS, "model.onnx": DEMO_CLS,
    "cat.jpg": SAMPLE,
}
NOT_RUN = [                            # (regex on the command, why it is not run here)
    (r"^make demo$", "run first, as python -m exporter demo (what make demo runs once .venv exists)"),
    (r"^make test", "the whole test suite: it is what CI runs, this test among it"),
    (r"^sudo ", "installs system packages"),
    (r"tests/boards", "the emulated boards: tests/boards runs them, with their own setup (qemu, Debian roots)"),
    (r"^pip install", "installs packages: tests/test_install.py does it in a fresh environment"),
]
ADJUST = [                             # (regex, arguments appended, why)
    (r"^(\.venv/bin/)?python -m exporter\.data classification ", " --train 64 --val 16 --test 16",
     "a smaller dataset than the 2,600 pictures of the documented command: the same code, in seconds"),
]
ADJUST_PYTHON = [                      # (text in a Python snippet, what runs instead, why)
    ("model.train(epochs=10,", "model.train(epochs=1,",
     "one epoch of the README's training, not ten: the same code path (train, checkpoint, convert) in CI's time"),
]
DELEGATED = {("docs/coming-from-mmedu.md", "python"): "tests/test_vision_docs.py"}


def snippets(doc):
    """[(kind 'python' or 'shell', text, line number)] of one document, in order."""
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        lines = f.read().splitlines()
    found = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^```\s*([\w+-]*)", line)
        if fence:
            lang = fence.group(1).lower()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            body = lines[i + 1:j]
            if lang == "python":
                found.append(("python", "\n".join(body) + "\n", i + 2))
            elif lang in SHELL_LANGS:
                found.extend(("shell", text, i + 2 + k) for k, text in _dollar_lines(body))
            i = j + 1
            continue
        if line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            body = [l[4:] for l in lines[i:j]]
            if any(l.startswith("$ ") for l in body):
                found.extend(("shell", text, i + 1 + k) for k, text in _dollar_lines(body))
            elif body and body[0].split()[:1] and body[0].split()[0] in COMMAND_WORDS:
                found.extend(("shell", text, i + 1 + k) for k, text in _command_lines(body))
            i = j
            continue
        i += 1
    return found


def _dollar_lines(body):
    return [(k, l[2:].strip()) for k, l in enumerate(body) if l.startswith("$ ")]


def _command_lines(body):
    out, k = [], 0
    while k < len(body):
        start, text = k, body[k].rstrip()
        while text.endswith("\\") and k + 1 < len(body):      # continued lines: one command
            k += 1
            text = text[:-1].rstrip() + " " + body[k].strip()
        if text.strip():
            out.append((start, text.strip()))
        k += 1
    return out


def fill_in(command):
    """A usage line with its placeholders filled in and its optional [...] parts left out."""
    command = re.sub(r"\s+#.*$", "", command)                       # the explaining comment
    command = re.sub(r"\s\[[^\[\]]*\]", "", command)                 # optional parts
    command = re.sub(r"\s\[[^\[\]]*\]", "", command)                 # (nested ones)
    for word, value in PLACEHOLDERS:
        command = re.sub(r"(?<![\w/.-])%s(?![\w.-])" % re.escape(word), value, command)
    return command


def plan(command):
    """('run', the command to run) or ('skip', the reason)."""
    for pattern, reason in NOT_RUN:
        if re.search(pattern, command):
            return "skip", reason
    command = fill_in(command)
    for pattern, extra, _ in ADJUST:
        if re.search(pattern, command):
            command += extra
    return "run", command


# --- fast: the extraction itself ----------------------------------------------------------------------------

def test_snippets_are_found_and_every_command_is_run_or_explained():
    by_doc = {doc: snippets(doc) for doc in DOCS}
    assert sum(k == "python" for k, _, _ in by_doc["README.md"]) >= 3
    shell = [t for k, t, _ in by_doc["README.md"] if k == "shell"]
    assert "make demo" in shell and any(t.startswith("tinyrt info") for t in shell)
    for doc, found in by_doc.items():
        for kind, text, line in found:
            if kind == "shell":
                what, detail = plan(text)
                assert what == "skip" or not re.search(r"\b[A-Z]{3,}\b(?!\.)", detail.split("#")[0]), \
                    "%s:%d: a placeholder is left in %r" % (doc, line, detail)
    assert fill_in("tinyrt run MODEL.onnx PICTURE... [--json] [--save DIR]   # the answers") == \
        "tinyrt run %s %s" % (DEMO_CLS, SAMPLE)


# --- slow: running them -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A copy of the repository with the demo made, the reader's files and a home folder."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("PIL")
    base = tmp_path_factory.mktemp("docs")
    work = str(base / "repo")
    ignore = shutil.ignore_patterns(".venv", ".git", "out", "__pycache__", ".pytest_cache", "*.egg-info")
    shutil.copytree(ROOT, work, ignore=ignore)
    os.symlink(sys.prefix, os.path.join(work, ".venv"))
    env = environment(work, str(base / "home"))
    os.makedirs(os.path.join(env["HOME"], "myproject"))     # the reader's project, where tinyrt/ is copied
    run_shell("python -m exporter demo", work, env, "the demo (make demo)")
    for name, source in READER_FILES.items():
        target = os.path.join(work, name)
        os.makedirs(os.path.dirname(target) or work, exist_ok=True)
        shutil.copy(os.path.join(work, source), target)
    import numpy as np
    np.save(os.path.join(work, "x.npy"), np.random.RandomState(0).rand(1, 3, 96, 96).astype(np.float32))
    return work, env


def environment(work, home):
    # HOME moves into the temporary folder, the caches stay where they were (numba's compiled kernels)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    env = dict(os.environ, HOME=home, XDG_CACHE_HOME=cache, PYTHONPATH=work, PYTHONIOENCODING="utf-8")
    env["PATH"] = os.path.join(sys.prefix, "bin") + os.pathsep + env.get("PATH", "")
    return env


def run_shell(command, cwd, env, where):
    out = subprocess.run(command, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=600)
    assert out.returncode == 0, "%s: `%s` failed (status %d):\n%s" % (where, command, out.returncode,
                                                                      out.stdout[-3000:])
    assert "Traceback" not in out.stdout, "%s: `%s`:\n%s" % (where, command, out.stdout[-3000:])
    return out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_doc_runs_as_written(doc, folder):
    work, env = folder
    ran = 0
    for i, (kind, text, line) in enumerate(snippets(doc)):
        where = "%s:%d" % (doc, line)
        if kind == "python":
            if (doc, "python") in DELEGATED:
                assert os.path.exists(os.path.join(ROOT, DELEGATED[(doc, "python")]))
                continue
            for written, instead, _ in ADJUST_PYTHON:
                text = text.replace(written, instead)
            path = os.path.join(work, "snippet_%d.py" % i)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            run_shell("python %s" % path, work, env, where + " (Python)\n" + text)
            ran += 1
        else:
            what, command = plan(text)
            if what == "run":
                run_shell(command, work, env, where)
                ran += 1
    print("%s: %d snippets ran" % (doc, ran))
