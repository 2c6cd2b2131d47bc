"""The Udacity files: images decoded by content, the keypoints CSV, the data directory, person splits.

The images carry ``.jpg`` names but are PNG (RGBA) or WebP; OpenCV decodes by content.
Every problem with a file raises :class:`DataError` with a one-line message naming it.
"""
import os
import random

import cv2
import numpy as np
import pandas as pd

NUM_KEYPOINTS = 68
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
DATA_DIR_ENV = "FKP_DATA_DIR"
TRAIN_CSV, TEST_CSV = "training_frames_keypoints.csv", "test_frames_keypoints.csv"
TRAIN_DIR, TEST_DIR = "training", "test"


class DataError(ValueError):
    """A user-facing data problem; the message names the file (and row)."""


# ----------------------------------------------------------------------------- reading
def _truncated(data):
    """True for PNG without its IEND chunk, JPEG without its end marker, or WebP
    shorter than its RIFF header says (OpenCV would decode part of them silently)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-32:]
    if data[:2] == b"\xff\xd8":
        return not data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return len(data) < int.from_bytes(data[4:8], "little") + 8
    return False


def decode_image(data, name="<bytes>"):
    """Decode image bytes by content (PNG, WebP, JPEG, ...) into uint8 RGB HxWx3."""
    if _truncated(data):
        raise DataError(f"{name}: truncated image file")
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if image is None:
        raise DataError(f"{name}: not a readable image")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DataError(f"{name}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_image(path):
    """Read an image file as uint8 RGB HxWx3, whatever its extension says."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    return decode_image(data, path)


def read_keypoints_csv(csv_file):
    """Return (names, keypoints[N, 68, 2] float32) from a Udacity keypoints CSV."""
    try:
        frame = pd.read_csv(csv_file, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{csv_file}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{csv_file}: not a keypoints CSV ({str(e).splitlines()[0]})") from None
    expected = 1 + 2 * NUM_KEYPOINTS
    if frame.shape[1] != expected:
        raise DataError(f"{csv_file}: expected {expected} columns (name + 68 x,y pairs), "
                        f"found {frame.shape[1]}")
    values = frame.iloc[:, 1:].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
    bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad_rows.size:
        row = bad_rows[0]
        raise DataError(f"{csv_file}: row {row + 2} ({frame.iloc[row, 0]}) has a missing or "
                        f"non-numeric keypoint value")
    return frame.iloc[:, 0].tolist(), values.reshape(-1, NUM_KEYPOINTS, 2)


def resolve_data_dir(data_dir=None):
    """The data directory: the argument, else $FKP_DATA_DIR, else ./data; checked."""
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    for sub in (TRAIN_CSV, TEST_CSV, TRAIN_DIR, TEST_DIR):
        if not os.path.exists(os.path.join(data_dir, sub)):
            raise DataError(f"{data_dir}: missing {sub} (run `python download_data.py` "
                            f"or pass --data-dir / set {DATA_DIR_ENV})")
    return data_dir


def split_paths(data_dir, split):
    """(csv_file, image_dir) of the 'train' or 'test' split."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}")
    csv, sub = (TRAIN_CSV, TRAIN_DIR) if split == "train" else (TEST_CSV, TEST_DIR)
    return os.path.join(data_dir, csv), os.path.join(data_dir, sub)


# ----------------------------------------------------------------------------- people
def person_of(name):
    """The person in a frame name: 'Abdel_Aziz_Al-Hakim_10.jpg' -> 'Abdel_Aziz_Al-Hakim'."""
    return os.path.splitext(name)[0].rsplit("_", 1)[0]


def _draw_people(names, indices, fraction, seed):
    """A seeded random ``fraction`` (at least one) of the people in rows ``indices``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a fraction of people must be in (0, 1], not {fraction}")
    people = sorted({person_of(names[i]) for i in indices})
    random.Random(seed).shuffle(people)
    return set(people[:max(1, round(fraction * len(people)))])


def split_by_person(names, val_fraction, seed=0):
    """Index lists (train, val) such that no person appears in both."""
    val_people = _draw_people(names, range(len(names)), val_fraction, seed)
    val = [i for i, n in enumerate(names) if person_of(n) in val_people]
    train = [i for i, n in enumerate(names) if person_of(n) not in val_people]
    return train, val


def keep_people(names, indices, fraction, seed=0):
    """The rows of ``indices`` whose person is in a seeded random ``fraction`` of their people."""
    kept = _draw_people(names, indices, fraction, seed)
    return [i for i in indices if person_of(names[i]) in kept]
