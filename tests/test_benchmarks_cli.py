"""``python -m benchmarks``'s command line: the committed results are only written when asked (--update),
and every option says what it does."""
import os

import pytest

pytest.importorskip("torch")

from benchmarks.__main__ import HERE, parse, parser  # noqa: E402
from benchmarks.models import ROOT  # noqa: E402


def test_committed_results_are_left_alone_unless_asked():
    args = parse([])
    assert args.out == os.path.join(ROOT, "out", "benchmarks", "results.md")
    assert args.png == os.path.join(ROOT, "out", "benchmarks", "results.png")
    args = parse(["--update"])
    assert args.out == os.path.join(HERE, "results.md") and args.png == os.path.join(HERE, "results.png")
    args = parse(["--out", "t.md", "--png", "t.png"])
    assert (args.out, args.png) == ("t.md", "t.png")


def test_every_option_has_help():
    actions = [a for a in parser()._actions if a.option_strings and a.dest != "help"]
    assert len(actions) >= 12
    assert [a.option_strings[0] for a in actions if not a.help] == []
