"""The Udacity files: images decoded by content, the keypoints CSV, the data directory, person splits.

The images carry ``.jpg`` names but are PNG (RGBA) or WebP; OpenCV decodes by content.
Every problem with a file raises :class:`DataError` with a one-line message naming it.
"""
import os
import random

import cv2
import numpy as np
from markup import NUM_KEYPOINTS

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
DATA_DIR_ENV = "FKP_DATA_DIR"
TRAIN_CSV, TEST_CSV = "training_frames_keypoints.csv", "test_frames_keypoints.csv"
TRAIN_DIR, TEST_DIR = "training", "test"


class DataError(ValueError):
    """A user-facing data problem; the message names the file (and row)."""


# ----------------------------------------------------------------------------- reading
def _jpeg_complete(data):
    """Whether a JPEG's segments and scans run to an end-of-image marker. Bytes after it (a
    phone's motion-photo video, a vendor trailer) are allowed; an EXIF thumbnail's own end
    marker inside an APP1 segment does not count, since segments are skipped by length."""
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:                      # fill byte before a marker
            pos += 1
            continue
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:     # markers without a length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker != 0xDA:
            continue
        while True:                             # entropy-coded data: up to the next real marker
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= end:
                return False
            following = data[pos + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                pos += 2
            elif following == 0xFF:
                pos += 1
            else:
                break
    return pos + 2 <= end and data[pos:pos + 2] == b"\xff\xd9"


def _png_complete(data):
    """Whether a PNG's chunks, walked by their lengths, reach IEND within the file."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos <= len(data)
    return False


def _truncated(data):
    """True for a PNG, JPEG or WebP cut short before its end (OpenCV would decode part of it
    silently); bytes after a complete image are allowed, as image viewers allow them."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return not _png_complete(data)
    if data[:2] == b"\xff\xd8":
        return not _jpeg_complete(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return len(data) < int.from_bytes(data[4:8], "little") + 8
    return False


# EXIF orientation tag value -> how to turn the stored pixels upright (as a photo viewer shows them)
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}
EXIF_ORIENTATION_TAG = 0x0112


def exif_orientation(data):
    """The EXIF orientation (1 to 8; 1 = upright) still to apply to JPEG, PNG or WebP bytes
    that OpenCV decoded; 1 when absent."""
    import io
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return 1        # TIFF: OpenCV's decoder (libtiff) turns it upright itself
    if data[8:12] != b"WEBP" and b"Exif\x00\x00" not in data and b"eXIf" not in data:
        return 1        # no EXIF block: skip Pillow, which would decode a whole PNG to look

    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(data)) as image:
            value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):   # not Pillow's, or a broken EXIF
        return 1
    return value if value in _ORIENT else 1


def decode_image(data, name="<bytes>"):
    """Decode image bytes by content (PNG, WebP, JPEG, TIFF, ...) into uint8 RGB HxWx3, turned
    upright by its EXIF orientation tag, so coordinates refer to the image a viewer shows."""
    if _truncated(data):
        raise DataError(f"{name}: truncated image file")
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None     # ignores EXIF: applied below
    if image is None:
        raise DataError(f"{name}: not a readable image")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DataError(f"{name}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    orientation = exif_orientation(data)
    return image if orientation == 1 else np.ascontiguousarray(_ORIENT[orientation](image))


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
    import pandas as pd     # here: the detection runtime reads no CSV
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
