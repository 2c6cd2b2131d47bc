"""Property-based: the readers turn arbitrary and mutated bytes into a result or the
project's one-line error (DataError, CheckpointError), never another exception."""
import io
import os
import tempfile

import cv2
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data_300w
import models
from checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from conftest import write_csv
from data_files import DataError, decode_image, read_keypoints_csv

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutations(seed_bytes):
    """Bytes derived from a valid file: truncated, with bytes overwritten, inserted or deleted."""
    n = len(seed_bytes)
    truncate = st.integers(0, n).map(lambda k: seed_bytes[:k])
    overwrite = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=8).map(
        lambda edits: _overwrite(seed_bytes, edits))
    insert = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=16)).map(
        lambda e: seed_bytes[:e[0]] + e[1] + seed_bytes[e[0]:])
    delete = st.tuples(st.integers(0, n - 1), st.integers(1, 64)).map(
        lambda e: seed_bytes[:e[0]] + seed_bytes[e[0] + e[1]:])
    return st.one_of(truncate, overwrite, insert, delete, st.binary(max_size=256))


def _overwrite(data, edits):
    data = bytearray(data)
    for at, value in edits:
        data[at] = value
    return bytes(data)


def _csv_bytes(tmp):
    path = os.path.join(tmp, "seed.csv")
    rng = np.random.default_rng(0)
    write_csv(path, [("a.jpg", rng.uniform(0, 200, 136)), ("b.jpg", rng.uniform(0, 200, 136))])
    return open(path, "rb").read()


def _pts_bytes():
    points = "\n".join(f"{10 + i:.3f} {20 + i / 2:.3f}" for i in range(68))
    return f"version: 1\nn_points: 68\n{{\n{points}\n}}\n".encode()


def _png_bytes():
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def _checkpoint_bytes():
    config = {"arch": "heatmapnet", "input_size": 32, "width": [4, 8, 12, 16], "neck": 4}
    buffer = io.BytesIO()
    torch.save({"config": {"model": config}, "model": models.build_model(config).state_dict()}, buffer)
    return buffer.getvalue()


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@SETTINGS
@given(data=mutations(_csv_bytes(tempfile.mkdtemp())))
def test_keypoints_csv_reader(tmp_path, data):
    try:
        names, keypoints = read_keypoints_csv(_write(tmp_path, "k.csv", data))
    except DataError:
        return
    assert keypoints.shape == (len(names), 68, 2) and np.isfinite(keypoints).all()


@SETTINGS
@given(data=mutations(_pts_bytes()))
def test_pts_reader(tmp_path, data):
    try:
        points = data_300w.read_pts(_write(tmp_path, "f.pts", data))
    except DataError:
        return
    assert points.shape == (68, 2) and np.isfinite(points).all()


@SETTINGS
@given(data=mutations(_png_bytes()))
def test_image_decoder(data):
    try:
        image = decode_image(data, "x.png")
    except DataError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@SETTINGS
@given(data=mutations(_checkpoint_bytes()))
def test_checkpoint_loader(tmp_path, data):
    path = _write(tmp_path, "m.pt", data)
    try:
        load_checkpoint(path)
        model, _ = load_model(path)
    except CheckpointError:
        return
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 136)


def test_the_seeds_themselves_are_read(tmp_path):
    """The properties above start from valid files: each reader accepts its seed."""
    assert read_keypoints_csv(_write(tmp_path, "k.csv", _csv_bytes(str(tmp_path))))[1].shape == (2, 68, 2)
    assert data_300w.read_pts(_write(tmp_path, "f.pts", _pts_bytes())).shape == (68, 2)
    assert decode_image(_png_bytes()).shape == (24, 32, 3)
    path = _write(tmp_path, "m.pt", _checkpoint_bytes())
    assert load_model(path)[1]["model"]["arch"] == "heatmapnet"
    save_checkpoint(load_checkpoint(path), str(tmp_path / "again.pt"))
