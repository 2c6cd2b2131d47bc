"""Crop geometry shared by training and inference: the square a face is framed in, cutting it
out of an image, and mapping points between the crop, the [-1, 1] frame and the image.

Points are continuous pixel coordinates: pixel i spans [i, i + 1), so the top-left pixel's
centre is (0.5, 0.5). The [-1, 1] frame of an ``S x S`` crop is ``(p - S/2) / (S/2)``.
No torch here: the runtime (detect.py and what it imports) reads only numpy and OpenCV.
"""
import cv2
import numpy as np

from markup import FLIP_PERMUTATION

# Face framing shared by training and inference: a square of side
# FRAMING_SCALE * max(keypoint box width, height), centred on the keypoint box.
# 1.8 matches a Haar box padded by 30% on each side (benchmarks/haar_framing.py measures it).
FRAMING_SCALE = 1.8


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


def crop_square_array(image, square, size):
    """Crop ``square`` = (x, y, side) out of the numpy ``image`` (H x W or H x W x C) and resize
    it to ``size`` x ``size``. Parts of the square outside the image are filled with zeros (no
    wrap-around); the resize is OpenCV's pixel-area average (antialiased). The same function
    frames faces for training and inference; map points back with :func:`uncrop_points`."""
    x, y, side = _pixel_square(square)
    array = np.asarray(image)
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


def mirror_points(keypoints, width):
    """x -> width - x with left/right identities swapped.

    Keypoints are continuous coordinates with pixel i spanning [i, i + 1): the convention
    of torchvision's resize, crop and rotation of KeyPoints. (Its horizontal_flip uses
    width - 1 - x, which would put flipped labels a pixel off their mirrored content.)
    """
    points = np.asarray(keypoints, np.float32)[..., FLIP_PERMUTATION, :].copy()
    points[..., 0] = width - points[..., 0]
    return points


