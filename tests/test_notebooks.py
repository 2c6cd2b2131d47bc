"""The three notebooks run top to bottom in smoke mode; committed outputs stay untouched."""
import os
import sys

import pytest

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


def test_three_notebooks_are_present():
    names = [os.path.basename(p) for p in run_notebooks.NOTEBOOKS]
    assert names == ["1. Load and Visualize Data.ipynb", "2. Define the Network Architecture.ipynb",
                     "3. Facial Keypoint Detection, Complete Pipeline.ipynb"]
