"""The four notebooks run top to bottom in smoke mode; committed outputs stay untouched."""
import glob
import json
import os
import re
import sys

import nbformat
import pytest

import data_300w
from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "notebooks"))
import run_notebooks  # noqa: E402


@pytest.mark.parametrize("path", run_notebooks.NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs_in_smoke_mode(path, data_dir, monkeypatch):
    monkeypatch.setenv("FKP_DATA_DIR", data_dir)
    with open(path, "rb") as f:
        committed = f.read()
    executed = run_notebooks.execute(path, smoke=True, write=False)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    with open(path, "rb") as f:
        assert f.read() == committed
    # every figure of the committed full run is drawn again (a cell that silently stopped plotting
    # would pass nbclient); the 300-W section draws only where a 300-W copy exists
    has_300w = data_300w.find_300w_dir() is not None
    committed_nb = nbformat.reads(committed.decode(), as_version=4)
    for old, new in zip(committed_nb.cells, executed.cells):
        if old.cell_type == "code" and (has_300w or "wild_dir" not in old.source):
            assert _figures(new) == _figures(old), old.source[:80]


def _figures(cell):
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def test_the_four_notebooks_are_present():
    names = [os.path.basename(p) for p in run_notebooks.NOTEBOOKS]
    assert names == ["1. Load and Visualize Data.ipynb", "2. Define the Network Architecture.ipynb",
                     "3. Facial Keypoint Detection, Complete Pipeline.ipynb", "4. Fun with Keypoints.ipynb"]


PROSE_NUMBER = re.compile(r"(?<![\d.])0\.\d{3,4}(?!\d)")
ANY_NUMBER = re.compile(r"(?<![\d.])\d+\.\d+(?:e-?\d+)?")
MEASURED = glob.glob(os.path.join(ROOT, "saved_models", "results", "*.json")) + [
    os.path.join(ROOT, "saved_models", "architecture_study.json")]     # what the benchmarks wrote


def measured_numbers():
    """Every number in the benchmarks' JSON: the figures a notebook may quote without printing."""
    numbers = []

    def walk(value):
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers.append(float(value))
    for path in MEASURED:
        with open(path) as f:
            walk(json.load(f))
    return numbers


def output_text(notebook):
    texts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def unsupported_numbers(notebook, measured):
    """Numbers like 0.0444 in the prose that no output prints and no benchmark JSON holds (to
    that precision): a prose figure must come from a run, not from another document."""
    printed = [float(x) for x in ANY_NUMBER.findall(output_text(notebook))] + list(measured)
    missing = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for number in PROSE_NUMBER.findall(cell.source):
            digits = len(number) - 2
            if any(round(p, digits) == float(number) for p in printed):
                continue
            missing.append(number)
    return missing


@pytest.mark.parametrize("path", run_notebooks.NOTEBOOKS, ids=os.path.basename)
def test_prose_numbers_come_from_the_outputs_or_the_measured_json(path):
    assert unsupported_numbers(nbformat.read(path, as_version=4), measured_numbers()) == []


def test_the_prose_check_catches_a_number_no_run_printed():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("stream", text="spread 0.19 cells\n")]),
        nbformat.v4.new_markdown_cell("The spread is 0.190 here and 0.230 there; the JSON says 0.0444.")])
    assert unsupported_numbers(notebook, [0.04436]) == ["0.230"]
