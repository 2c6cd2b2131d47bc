"""Facial keypoints data: decoding, the dataset, and keypoint-aware transforms.

Every transform maps ``(image, keypoints) -> (image, keypoints)``. Geometry is done
by ``torchvision.transforms.v2`` on ``tv_tensors.Image`` / ``tv_tensors.KeyPoints``,
so an image and its 68 points always move together.

Keypoint frames
---------------
* pixels: ``(x, y)`` in the image the transform received, x to the right, y down.
* normalised (after :class:`Normalize`): ``(p - S/2) / (S/2)`` for an ``S x S`` crop,
  so the crop spans ``[-1, 1]`` on both axes. :func:`denormalize_keypoints` inverts it.
"""
import os
import random

import cv2
import numpy as np
import pandas as pd
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
import torchvision.transforms.v2.functional as F

NUM_KEYPOINTS = 68
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
DATA_DIR_ENV = "FKP_DATA_DIR"
TRAIN_CSV, TEST_CSV = "training_frames_keypoints.csv", "test_frames_keypoints.csv"
TRAIN_DIR, TEST_DIR = "training", "test"

# Horizontal flip: point i of the flipped face is point FLIP_PERMUTATION[i] of the
# original (68-point Multi-PIE markup: jaw, brows, nose, eyes, outer and inner lips).
_MIRROR_PAIRS = ([(i, 16 - i) for i in range(8)]                              # jaw
                 + [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]         # brows
                 + [(31, 35), (32, 34)]                                       # nostrils
                 + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
                 + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]         # outer lips
                 + [(60, 64), (61, 63), (65, 67)])                            # inner lips
FLIP_PERMUTATION = np.arange(NUM_KEYPOINTS)
for _a, _b in _MIRROR_PAIRS:
    FLIP_PERMUTATION[_a], FLIP_PERMUTATION[_b] = _b, _a

# Face framing shared by training and inference: a square of side
# FRAMING_SCALE * max(keypoint box width, height), centred on the keypoint box.
# 1.8 matches a Haar box padded by 30% on each side (measured: see detect.py).
FRAMING_SCALE = 1.8


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


def person_of(name):
    """The person in a frame name: 'Abdel_Aziz_Al-Hakim_10.jpg' -> 'Abdel_Aziz_Al-Hakim'."""
    return os.path.splitext(name)[0].rsplit("_", 1)[0]


def split_by_person(names, val_fraction, seed=0):
    """Index lists (train, val) such that no person appears in both."""
    people = sorted({person_of(n) for n in names})
    random.Random(seed).shuffle(people)
    val_people = set(people[:max(1, round(val_fraction * len(people)))])
    val = [i for i, n in enumerate(names) if person_of(n) in val_people]
    train = [i for i, n in enumerate(names) if person_of(n) not in val_people]
    return train, val


class FacialKeypointsDataset(torch.utils.data.Dataset):
    """Face images with 68 keypoints; an item is {'image', 'keypoints', 'name'}.

    Without a transform, 'image' is uint8 RGB HxWx3 and 'keypoints' a (68, 2) float32
    array in pixels. ``indices`` selects rows; ``cache`` keeps decoded images in memory.
    """

    def __init__(self, csv_file, root_dir, transform=None, indices=None, cache=False):
        names, keypoints = read_keypoints_csv(csv_file)
        if not os.path.isdir(root_dir):
            raise DataError(f"{root_dir}: image directory not found")
        rows = range(len(names)) if indices is None else indices
        self.names = [names[i] for i in rows]
        self.keypoints = keypoints[list(rows)]
        self.root_dir, self.transform = root_dir, transform
        self._cache = {} if cache else None

    def __len__(self):
        return len(self.names)

    def image(self, idx):
        if self._cache is not None and idx in self._cache:
            return self._cache[idx]
        image = load_image(os.path.join(self.root_dir, self.names[idx]))
        if self._cache is not None:
            self._cache[idx] = image
        return image

    def __getitem__(self, idx):
        image, keypoints = self.image(idx), self.keypoints[idx].copy()
        if self.transform is not None:
            image, keypoints = self.transform(image, keypoints)
        return {"image": image, "keypoints": keypoints, "name": self.names[idx]}


# ----------------------------------------------------------------------------- frames
def normalize_keypoints(keypoints, size):
    """Pixels of an ``size x size`` crop -> the [-1, 1] frame."""
    half = size / 2.0
    return (keypoints - half) / half


def denormalize_keypoints(keypoints, size):
    """The [-1, 1] frame -> pixels of an ``size x size`` crop (inverse of the above)."""
    half = size / 2.0
    return keypoints * half + half


def face_square(keypoints, scale=FRAMING_SCALE):
    """The training framing (x, y, side): a square around the keypoints' box."""
    kp = np.asarray(keypoints, dtype=np.float64)
    lo, hi = kp.min(axis=0), kp.max(axis=0)
    side = scale * float((hi - lo).max())
    cx, cy = (lo + hi) / 2.0
    return cx - side / 2.0, cy - side / 2.0, side


def crop_square(image, square, size):
    """Crop ``square`` = (x, y, side) out of ``image`` and resize it to ``size``.

    Parts of the square outside the image are filled with zeros (no wrap-around).
    Returns the crop as a tv_tensors.Image; map points back with :func:`uncrop_points`.
    """
    x, y, side = _pixel_square(square)
    return F.resized_crop(as_image(image), y, x, side, side, [size, size], antialias=True)


def _pixel_square(square):
    """The square as crop_square cuts it: integer corner and side."""
    x, y, side = (int(round(v)) for v in square)
    return x, y, max(1, side)


def crop_points(points, square, size):
    """Original-image pixels -> pixels of the ``size`` crop of ``square``."""
    x, y, side = _pixel_square(square)
    return (np.asarray(points, dtype=np.float32) - np.array([x, y], np.float32)) * (size / side)


def uncrop_points(points, square, size):
    """Pixels of the ``size`` crop of ``square`` -> original-image pixels (inverse of crop_points)."""
    x, y, side = _pixel_square(square)
    return np.asarray(points, dtype=np.float32) * (side / size) + np.array([x, y], np.float32)


# ----------------------------------------------------------------------------- transforms
def as_image(image):
    """numpy HxW(xC) or tensor CxHxW -> tv_tensors.Image (CxHxW)."""
    if isinstance(image, tv_tensors.Image):
        return image
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
        image = image[None] if image.ndim == 2 else image.permute(2, 0, 1)
    return tv_tensors.Image(image)


def as_keypoints(keypoints, image):
    """Array (68, 2) -> tv_tensors.KeyPoints on ``image``'s canvas."""
    return tv_tensors.KeyPoints(torch.as_tensor(np.asarray(keypoints), dtype=torch.float32),
                                canvas_size=tuple(image.shape[-2:]))


class _TV:
    """Adapter: run a torchvision v2 transform on (image, keypoints) together."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image, keypoints):
        image = as_image(image)
        return self.transform(image, as_keypoints(keypoints, image))

    def __repr__(self):
        return f"{type(self).__name__}({self.transform})"


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, keypoints):
        for t in self.transforms:
            image, keypoints = t(image, keypoints)
        return image, keypoints

    def __repr__(self):
        return "Compose(\n  " + ",\n  ".join(map(repr, self.transforms)) + "\n)"


class Rescale(_TV):
    """Resize: an int sets the shorter side (aspect kept); a pair sets (h, w)."""

    def __init__(self, output_size):
        size = [output_size] if isinstance(output_size, int) else list(output_size)
        super().__init__(v2.Resize(size, antialias=True))


class RandomCrop(_TV):
    """A random ``output_size`` crop (square for an int); an image of that size is kept."""

    def __init__(self, output_size):
        super().__init__(v2.RandomCrop(output_size))


class FaceCrop:
    """Square crop of the training framing (see :func:`face_square`), resized to ``size``."""

    def __init__(self, size, scale=FRAMING_SCALE):
        self.size, self.scale = size, scale

    def __call__(self, image, keypoints):
        square = face_square(np.asarray(keypoints), self.scale)
        crop = crop_square(image, square, self.size)
        return crop, as_keypoints(crop_points(keypoints, square, self.size), crop)

    def __repr__(self):
        return f"FaceCrop(size={self.size}, scale={self.scale})"


class RandomHorizontalFlip:
    """Mirror the image and swap left/right keypoint identities (FLIP_PERMUTATION)."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image, keypoints):
        image = as_image(image)
        if random.random() >= self.p:
            return image, as_keypoints(keypoints, image)
        return hflip(image, keypoints)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


def mirror_points(keypoints, width):
    """x -> width - x with left/right identities swapped.

    Keypoints are continuous coordinates with pixel i spanning [i, i + 1): the convention
    of torchvision's resize, crop and rotation of KeyPoints. (Its horizontal_flip uses
    width - 1 - x, which would put flipped labels a pixel off their mirrored content.)
    """
    points = np.asarray(keypoints, np.float32)[..., FLIP_PERMUTATION, :].copy()
    points[..., 0] = width - points[..., 0]
    return points


def hflip(image, keypoints):
    """Deterministic mirror with left/right swap (used by flip and by test-time flip)."""
    image = as_image(image)
    return F.horizontal_flip(image), as_keypoints(mirror_points(keypoints, image.shape[-1]), image)


class RandomRotation(_TV):
    """Rotate by a uniform angle in [-degrees, degrees] about the image centre."""

    def __init__(self, degrees):
        super().__init__(v2.RandomRotation(degrees, interpolation=v2.InterpolationMode.BILINEAR))


class RandomAffine(_TV):
    """Rotation, scale and translation in one warp (arguments as torchvision's)."""

    def __init__(self, degrees=0.0, translate=None, scale=None):
        super().__init__(v2.RandomAffine(degrees, translate=translate, scale=scale,
                                         interpolation=v2.InterpolationMode.BILINEAR))


class ColorJitter(_TV):
    """Random brightness and contrast; keypoints untouched."""

    def __init__(self, brightness=0.0, contrast=0.0):
        super().__init__(v2.ColorJitter(brightness=brightness, contrast=contrast))


class Normalize:
    """Grayscale float in [0, 1]; keypoints into the [-1, 1] frame of a square image."""

    def __call__(self, image, keypoints):
        image = as_image(image)
        if image.shape[-3] == 3:
            image = F.rgb_to_grayscale(image)
        h, w = image.shape[-2:]
        if h != w:
            raise ValueError(f"Normalize expects a square image, got {h}x{w}")
        image = F.to_dtype(image, torch.float32, scale=True)
        return image, normalize_keypoints(np.asarray(keypoints, np.float32), w)

    def __repr__(self):
        return "Normalize()"


class ToTensor:
    """Plain float32 tensors: image 1xSxS, keypoints (68, 2)."""

    def __call__(self, image, keypoints):
        image = torch.as_tensor(as_image(image)).as_subclass(torch.Tensor).float()
        return image, torch.as_tensor(np.asarray(keypoints), dtype=torch.float32)

    def __repr__(self):
        return "ToTensor()"


def train_transform(size, rotation, translate, scale, brightness, contrast, flip):
    """The augmentation pipeline; train.make_transform fills it from TrainConfig."""
    return Compose([FaceCrop(size), RandomHorizontalFlip(flip),
                    RandomAffine(rotation, (translate, translate), scale),
                    ColorJitter(brightness, contrast), Normalize(), ToTensor()])


def eval_transform(size):
    """Deterministic framing for validation, testing and inference."""
    return Compose([FaceCrop(size), Normalize(), ToTensor()])
