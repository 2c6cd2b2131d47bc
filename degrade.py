"""Image-quality degradations: a training augmentation and a robustness test.

Each degradation maps a uint8 image (H x W or H x W x 3) to one of the same shape and
type; keypoints never move. ``RandomDegrade`` draws one at random while training (on the
80 px crop); ``evaluate.py --degrade NAME=LEVEL`` applies one at a fixed level to every
raw test image before the pipeline, to measure how the model holds up on worse images.
``gamma`` (a dark exposure) is deliberately not among the training ones, so the
robustness table has one family the model never trained on.
"""
import random

import cv2
import numpy as np

import data_load


def blur(image, sigma):
    """Gaussian blur (defocus, motion-free), ``sigma`` in pixels."""
    return cv2.GaussianBlur(image, (0, 0), sigma)


def noise(image, sigma, seed=0):
    """Additive Gaussian noise (sensor noise), ``sigma`` in gray levels."""
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def jpeg(image, quality):
    """A JPEG round trip at ``quality`` (1-100): block and ringing artefacts."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED).reshape(image.shape)


def low_resolution(image, factor):
    """Down-sample by ``factor`` (< 1) and back up: a smaller, upscaled face."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(image.shape)


def gamma(image, value):
    """Gamma curve: ``value`` > 1 darkens the mid-tones (under-exposure)."""
    table = np.clip(255.0 * (np.arange(256) / 255.0) ** value + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


DEGRADATIONS = {"blur": blur, "noise": noise, "jpeg": jpeg, "lowres": low_resolution, "gamma": gamma}


def parse(spec):
    """'NAME=LEVEL' -> (name, level), with a one-line error for anything else."""
    name, sep, level = spec.partition("=")
    if not sep or name not in DEGRADATIONS:
        raise ValueError(f"degradation {spec!r}: expected NAME=LEVEL with NAME one of {sorted(DEGRADATIONS)}")
    try:
        return name, float(level)
    except ValueError:
        raise ValueError(f"degradation {spec!r}: LEVEL must be a number") from None


def apply(image, name, level):
    """One degradation at a fixed level (numpy uint8 in, numpy uint8 out)."""
    return DEGRADATIONS[name](np.ascontiguousarray(image), level)


# Training ranges, in the crop's pixels (80 px: a face about 44 px wide) and gray levels.
TRAIN_RANGES = {"blur": (0.5, 2.0), "noise": (2.0, 12.0), "jpeg": (15.0, 60.0), "lowres": (0.35, 0.7)}


class RandomDegrade:
    """With probability ``p``, one of blur, noise, JPEG or low resolution at a random
    level in ``TRAIN_RANGES``; keypoints untouched."""

    def __init__(self, p=0.0, ranges=None):
        self.p, self.ranges = p, dict(TRAIN_RANGES if ranges is None else ranges)

    def __call__(self, image, keypoints):
        if self.p <= 0 or random.random() >= self.p:
            return image, keypoints
        name = random.choice(sorted(self.ranges))
        level = random.uniform(*self.ranges[name])
        array = data_load._as_array(image)
        array = noise(array, level, random.getrandbits(32)) if name == "noise" else apply(array, name, level)
        out = data_load.as_image(array)
        return out, data_load.as_keypoints(keypoints, out)

    def __repr__(self):
        return f"RandomDegrade(p={self.p}, {sorted(self.ranges)})"
