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


def test_a_new_table_keeps_the_notes_below_the_old_one(tmp_path):
    """--update replaces the table at the top of the committed results.md; the sessions' notes under their
    "### " headings stay."""
    from benchmarks.__main__ import write_table
    path = tmp_path / "results.md"
    write_table(str(path), "Machine: old.\n\n| a |\n|---|\n")
    assert path.read_text() == "Machine: old.\n\n| a |\n|---|\n"
    path.write_text(path.read_text() + "\n### int8\n\nnotes\n\n### small models\n\nmore notes\n")
    write_table(str(path), "Machine: new.\n\n| b |\n|---|\n")
    assert path.read_text() == "Machine: new.\n\n| b |\n|---|\n\n### int8\n\nnotes\n\n### small models\n\nmore notes\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]  # no temporary file left beside it
