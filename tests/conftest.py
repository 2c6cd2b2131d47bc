import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import data_load  # noqa: E402

SHARED_DATA = os.path.join(ROOT, "..", "shared", "data", "facial_keypoints")
SHIPPED_MODEL = os.path.join(ROOT, "saved_models", "keypointnet.pt")


@pytest.fixture(scope="session")
def data_dir():
    """The dataset: $FKP_DATA_DIR, else ../shared/data/facial_keypoints."""
    path = os.environ.get(data_load.DATA_DIR_ENV) or SHARED_DATA
    if not os.path.isdir(path):
        pytest.skip(f"dataset not found at {path} (set {data_load.DATA_DIR_ENV})")
    return path


@pytest.fixture(scope="session")
def train_set(data_dir):
    return data_load.FacialKeypointsDataset(*data_load.split_paths(data_dir, "train"))


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
