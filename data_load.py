"""Facial keypoints data: the dataset, the face framing and keypoint-aware transforms.

Every transform maps ``(image, keypoints) -> (image, keypoints)``; images travel as
``tv_tensors.Image``, points as ``tv_tensors.KeyPoints``, so an image and its 68 points
always move together. Resizing and cropping use torchvision (Rescale, RandomCrop) or
OpenCV (the face crop, the affine warp: several times faster, same coordinate convention).
Reading the files and the person splits live in data_files.py, the crop geometry shared with
inference in geometry.py, the 68-point markup in markup.py.

Keypoint frames
---------------
* pixels: ``(x, y)`` in the image the transform received, x to the right, y down, continuous:
  pixel i spans [i, i + 1), so the top-left pixel's centre is (0.5, 0.5). Every reader converts
  into this on read (300-W's 1-based ``.pts``, dlib's 0-based XML: data_300w.py).
* normalised (after :class:`Normalize`): ``(p - S/2) / (S/2)`` for an ``S x S`` crop,
  so the crop spans ``[-1, 1]`` on both axes. geometry.denormalize_keypoints inverts it.
"""
import os
import random

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
import torchvision.transforms.v2.functional as F

from data_files import DataError, load_image, read_keypoints_csv
from data_files import person_of, resolve_data_dir, split_by_person, split_paths  # noqa: F401  (the notebooks read the data through data_load)
from markup import COVERED_PARTS, LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from geometry import (FRAMING_SCALE, crop_points, crop_square_array, face_square, framed_square, mirror_points,
                      normalize_keypoints)


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
def _as_array(image):
    """tv_tensors.Image / tensor CxHxW or numpy -> numpy HxW(xC) (a view where possible)."""
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).numpy()
    return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image


def crop_square(image, square, size):
    """geometry.crop_square_array of an image or tensor, as a tv_tensors.Image."""
    return as_image(crop_square_array(_as_array(image), square, size))


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


class RandomOcclusion:
    """With probability ``p``, one rectangle hides part of the face, as a hand, a microphone,
    hair or sunglasses would: centred near a random keypoint, each side a uniform fraction
    ``sides`` of the crop's, filled with a flat gray or with pixels copied from elsewhere in
    the crop. The keypoints do not move: hidden points are still to be placed where they are,
    as 300-W's annotators placed them."""

    FILLS = ("flat", "copy")

    def __init__(self, p=0.0, sides=(0.15, 0.45)):
        self.p, self.sides = p, tuple(sides)

    def __call__(self, image, keypoints):
        if self.p <= 0 or random.random() >= self.p:
            return image, keypoints
        array = _as_array(image).copy()
        h, w = array.shape[:2]
        rw, rh = (max(1, int(round(random.uniform(*self.sides) * n))) for n in (w, h))
        cx, cy = np.asarray(keypoints, np.float64)[random.randrange(len(keypoints))]
        # the rectangle lies inside the crop, near the point (the point itself may be at its edge)
        x0 = int(np.clip(cx - random.uniform(0, rw), 0, w - rw))
        y0 = int(np.clip(cy - random.uniform(0, rh), 0, h - rh))
        if random.choice(self.FILLS) == "flat":
            array[y0:y0 + rh, x0:x0 + rw] = random.randrange(256)
        else:
            sx, sy = random.randrange(w - rw + 1), random.randrange(h - rh + 1)
            array[y0:y0 + rh, x0:x0 + rw] = array[sy:sy + rh, sx:sx + rw].copy()
        out = as_image(array)
        return out, as_keypoints(keypoints, out)

    def __repr__(self):
        return f"RandomOcclusion(p={self.p}, sides={self.sides})"


COVER_PAD = 0.15    # outer-eye distances added around a covered part's points on every side


def cover_part(image, keypoints, part, gray=None):
    """A copy of ``image`` (numpy HxW(xC)) with one flat block over ``part`` (a name in
    markup.COVERED_PARTS): the box of its keypoints (pixels), padded by COVER_PAD outer-eye
    distances, filled with the mean of ``gray`` (default: the image) over the face's keypoint box."""
    points = np.asarray(keypoints, np.float64)
    indices = COVERED_PARTS[part]
    pad = COVER_PAD * np.linalg.norm(points[RIGHT_EYE_OUTER] - points[LEFT_EYE_OUTER])
    h, w = image.shape[:2]
    x0, y0 = np.maximum(0, np.floor(points[indices].min(0) - pad)).astype(int)
    x1, y1 = np.minimum([w, h], np.ceil(points[indices].max(0) + pad)).astype(int)
    lo = np.clip(points.min(0), 0, [w, h]).astype(int)
    hi = np.maximum(np.clip(points.max(0), 0, [w, h]).astype(int), lo + 1)
    fill = float((image if gray is None else gray)[lo[1]:hi[1], lo[0]:hi[0]].mean())
    out = image.copy()
    out[y0:y1, x0:x1] = round(fill) if np.issubdtype(out.dtype, np.integer) else fill
    return out


class CoverPart:
    """:func:`cover_part` as a transform: one part of every face hidden, the keypoints unmoved."""

    def __init__(self, part):
        if part not in COVERED_PARTS:
            raise ValueError(f"{part!r} is not one of {sorted(COVERED_PARTS)}")
        self.part = part

    def __call__(self, image, keypoints):
        out = as_image(cover_part(_as_array(image), keypoints, self.part))
        return out, as_keypoints(keypoints, out)


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
    """The augmentation pipeline; train_data.make_transform fills it from TrainConfig
    (``extra``: image-only transforms applied after the colour jitter)."""
    return Compose([FaceCrop(size, framings=framings), RandomHorizontalFlip(flip),
                    RandomAffine(rotation, (translate, translate), scale),
                    ColorJitter(brightness, contrast), *extra, Normalize(), ToTensor()])


def eval_transform(size):
    """Deterministic framing for validation, testing and inference."""
    return Compose([FaceCrop(size), Normalize(), ToTensor()])
