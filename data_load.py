"""Facial keypoints data: the dataset, the face framing and keypoint-aware transforms.

Every transform maps ``(image, keypoints) -> (image, keypoints)``; images travel as
``tv_tensors.Image``, points as ``tv_tensors.KeyPoints``, so an image and its 68 points
always move together. Resizing and cropping use torchvision (Rescale, RandomCrop) or
OpenCV (the face crop, the affine warp: several times faster, same coordinate convention).
Reading the files and the person splits live in data_files.py (re-exported here).

Keypoint frames
---------------
* pixels: ``(x, y)`` in the image the transform received, x to the right, y down, continuous:
  pixel i spans [i, i + 1), so the top-left pixel's centre is (0.5, 0.5). Every reader converts
  into this on read (300-W's 1-based ``.pts``, dlib's 0-based XML: data_300w.py).
* normalised (after :class:`Normalize`): ``(p - S/2) / (S/2)`` for an ``S x S`` crop,
  so the crop spans ``[-1, 1]`` on both axes. :func:`denormalize_keypoints` inverts it.
"""
import os
import random

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
import torchvision.transforms.v2.functional as F

from data_files import (DATA_DIR_ENV, NUM_KEYPOINTS, DataError, decode_image, keep_people,  # noqa: F401
                        load_image, person_of, read_keypoints_csv, resolve_data_dir, split_by_person,
                        split_paths)

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


def keypoint_box(keypoints):
    """(centre (2,), side): the centre of the keypoints' bounding box and its longer side."""
    kp = np.asarray(keypoints, dtype=np.float64)
    lo, hi = kp.min(axis=0), kp.max(axis=0)
    return (lo + hi) / 2.0, float((hi - lo).max())


def framed_square(keypoints, u=0.0, v=0.0, r=FRAMING_SCALE):
    """The square (x, y, side) of side r, centred (u, v) away from the keypoint box's
    centre, all in keypoint-box sides (the frame of framing.measure_framings)."""
    (cx, cy), box_side = keypoint_box(keypoints)
    side = r * box_side
    cx, cy = cx + u * box_side, cy + v * box_side
    return cx - side / 2.0, cy - side / 2.0, side


def face_square(keypoints, scale=FRAMING_SCALE):
    """The training framing (x, y, side): a square of ``scale`` x the keypoint box, centred on it."""
    return framed_square(keypoints, 0.0, 0.0, scale)


def _as_array(image):
    """tv_tensors.Image / tensor CxHxW or numpy -> numpy HxW(xC) (a view where possible)."""
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).numpy()
    return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image


def crop_square(image, square, size):
    """Crop ``square`` = (x, y, side) out of ``image`` and resize it to ``size``.

    Parts of the square outside the image are filled with zeros (no wrap-around); the
    resize is OpenCV's pixel-area average (antialiased). The same function frames faces
    for training and inference. Returns a tv_tensors.Image; map points back with
    :func:`uncrop_points`.
    """
    return as_image(crop_square_array(image, square, size))


def crop_square_array(image, square, size):
    """:func:`crop_square` as a numpy array (H x W or H x W x C), the inference path."""
    x, y, side = _pixel_square(square)
    array = _as_array(image)
    h, w = array.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if (x0, y0, x1, y1) == (x, y, x + side, y + side):
        region = array[y0:y1, x0:x1]           # a view: OpenCV reads the strides, no copy
    else:
        region = np.zeros((side, side) + array.shape[2:], array.dtype)
        if x1 > x0 and y1 > y0:
            region[y0 - y:y1 - y, x0 - x:x1 - x] = array[y0:y1, x0:x1]
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)


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
    """Square crop around the keypoint box, resized to ``size``.

    Without ``framings``: the training framing (:func:`face_square`). With ``framings``,
    rows (u, v, r) measured from a face detector (see framing.measure_framings), each
    call frames the face as the detector did once: centre offset (u, v) and side r, in
    keypoint-box sides. The model then trains on the framing errors it meets at test time.
    """

    def __init__(self, size, scale=FRAMING_SCALE, framings=None):
        self.size, self.scale = size, scale
        self.framings = None if framings is None else np.asarray(framings, np.float64).reshape(-1, 3)

    def square(self, keypoints):
        if self.framings is None or len(self.framings) == 0:
            return face_square(keypoints, self.scale)
        return framed_square(keypoints, *self.framings[random.randrange(len(self.framings))])

    def __call__(self, image, keypoints):
        square = self.square(keypoints)
        crop = crop_square(image, square, self.size)
        return crop, as_keypoints(crop_points(keypoints, square, self.size), crop)

    def __repr__(self):
        framings = "" if self.framings is None else f", framings={len(self.framings)} measured"
        return f"FaceCrop(size={self.size}, scale={self.scale}{framings})"


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


class RandomAffine:
    """Rotation about the centre, scale and translation in one OpenCV warp; ranges as
    torchvision's RandomAffine (degrees: max angle or (min, max); translate: fractions
    of width and height; scale: (min, max)). Uncovered pixels are zero."""

    def __init__(self, degrees=0.0, translate=None, scale=None):
        self.degrees = (-degrees, degrees) if np.isscalar(degrees) else tuple(degrees)
        self.translate, self.scale = translate, scale

    def matrix(self, width, height):
        """A random 2x3 matrix acting on keypoint coordinates (pixel i spans [i, i+1))."""
        angle = random.uniform(*self.degrees)
        scale = random.uniform(*self.scale) if self.scale else 1.0
        tx, ty = ((round(random.uniform(-1, 1) * self.translate[0] * width),
                   round(random.uniform(-1, 1) * self.translate[1] * height)) if self.translate else (0, 0))
        m = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
        m[:, 2] += (tx, ty)
        return m

    def __call__(self, image, keypoints):
        array = _as_array(image)
        h, w = array.shape[:2]
        m = self.matrix(w, h)
        # OpenCV samples at pixel centres (pixel i at i): shift into its frame and back
        m_pixels = m.copy()
        m_pixels[:, 2] += m[:, :2].sum(axis=1) * 0.5 - 0.5
        out = cv2.warpAffine(array, m_pixels, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        points = np.asarray(keypoints, np.float32) @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32)
        out = as_image(out)
        return out, as_keypoints(points, out)

    def __repr__(self):
        return f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale})"


class RandomRotation(RandomAffine):
    """Rotate by a uniform angle in [-degrees, degrees] (or in a (min, max) pair)."""

    def __init__(self, degrees):
        super().__init__(degrees)


class ColorJitter:
    """Random brightness (x factor) then contrast (about the mean gray); keypoints untouched.
    Each argument is a strength s (factor in [1 - s, 1 + s]) or a (min, max) pair."""

    def __init__(self, brightness=0.0, contrast=0.0):
        self.brightness, self.contrast = self._range(brightness), self._range(contrast)

    @staticmethod
    def _range(value):
        return (max(0.0, 1 - value), 1 + value) if np.isscalar(value) else tuple(value)

    def __call__(self, image, keypoints):
        array = _as_array(image).astype(np.float32) * random.uniform(*self.brightness)
        gray = array if array.ndim == 2 else array @ np.array([0.299, 0.587, 0.114], np.float32)
        mean = float(np.clip(gray, 0, 255).mean())
        array = (np.clip(array, 0, 255) - mean) * random.uniform(*self.contrast) + mean
        out = as_image(np.clip(array + 0.5, 0, 255).astype(np.uint8))
        return out, as_keypoints(keypoints, out)

    def __repr__(self):
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast})"


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


def train_transform(size, rotation, translate, scale, brightness, contrast, flip, framings=None, extra=()):
    """The augmentation pipeline; train.make_transform fills it from TrainConfig
    (``extra``: image-only transforms applied after the colour jitter)."""
    return Compose([FaceCrop(size, framings=framings), RandomHorizontalFlip(flip),
                    RandomAffine(rotation, (translate, translate), scale),
                    ColorJitter(brightness, contrast), *extra, Normalize(), ToTensor()])


def eval_transform(size):
    """Deterministic framing for validation, testing and inference."""
    return Compose([FaceCrop(size), Normalize(), ToTensor()])
