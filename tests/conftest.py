import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import data_300w  # noqa: E402
import data_files
import data_load  # noqa: E402
from find_data import candidates, find_udacity_data  # noqa: E402

SHIPPED_MODEL = os.path.join(ROOT, "saved_models", "keypointnet.pt")
_deselected_wild = []


def pytest_configure(config):
    config.addinivalue_line("markers", "wild_photos: scores real 300-W photographs ($FKP_300W_DIR)")


def pytest_collection_modifyitems(config, items):
    """Without a 300-W copy (it cannot be downloaded), the tests marked wild_photos are
    deselected, and the summary says so: never a silent skip."""
    if data_300w.find_300w_dir() is None:
        _deselected_wild.extend(i for i in items if i.get_closest_marker("wild_photos"))
        if _deselected_wild:
            config.hook.pytest_deselected(items=_deselected_wild)
            items[:] = [i for i in items if not i.get_closest_marker("wild_photos")]


def pytest_terminal_summary(terminalreporter):
    if _deselected_wild:
        terminalreporter.write_line(f"{len(_deselected_wild)} tests deselected: they score real 300-W "
                                    f"photographs (set {data_300w.WILD_DIR_ENV} to a 300-W copy)", yellow=True)


def pytest_sessionfinish(session):
    """A skipped test fails the run: `make test` never passes by skipping."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.ensure_newline()
        reporter.write_line(f"{len(skipped)} tests skipped: a skip counts as a failure here", red=True)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def data_dir():
    """Udacity's data: $FKP_DATA_DIR, else ./data, else ../shared/data/facial_keypoints."""
    path = find_udacity_data()
    if path is None:
        pytest.fail(f"Udacity's data not found in {' or '.join(candidates())}: run `make data` "
                    f"or set {data_files.DATA_DIR_ENV}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def train_set(data_dir):
    return data_load.FacialKeypointsDataset(*data_files.split_paths(data_dir, "train"))


@pytest.fixture
def face_sample(train_set):
    item = train_set[0]
    return item["image"], item["keypoints"]


def write_csv(path, rows):
    """A keypoints CSV in Udacity's layout: header, then name + 136 values per row."""
    header = "," + ",".join(str(i) for i in range(136))
    with open(path, "w") as f:
        f.write(header + "\n")
        for name, values in rows:
            f.write(name + "," + ",".join(str(v) for v in np.ravel(values)) + "\n")
