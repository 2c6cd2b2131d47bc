"""The README's figures are the benchmarks' JSON, written by benchmarks/results.py."""
import os

from conftest import ROOT
from benchmarks import results   # as a package: benchmarks/ on sys.path would shadow video.py


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_the_readme_figures_are_the_json_figures():
    text = readme()
    assert results.render(text) == text, "run benchmarks/results.py after a benchmark"


def test_a_figure_edited_by_hand_is_caught():
    text = readme()
    start = text.index("<!-- results:accuracy -->")
    row = text.index("| 0.", start)
    edited = text[:row] + "| 0.0001" + text[row + 7:]
    assert results.render(edited) != edited
