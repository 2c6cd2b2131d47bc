"""Image-quality degradations: a training augmentation and a robustness test.

Each degradation maps a uint8 image (H x W or H x W x 3) to one of the same shape and
type; keypoints never move. ``RandomDegrade`` draws one at random while training (on the
80 px crop); ``evaluate.py --degrade NAME=LEVEL`` applies one at a fixed level to every
raw test image before the pipeline, to measure how the model holds up on worse images.
``gamma`` (a dark exposure) and the lighting ones (``backlight``, ``uneven``, ``cast``)
are deliberately not among the training ones, so the robustness table has families the
model never trained on.
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


def _gain(image, gain):
    """Each pixel times its gain (H x W), clipped: light that varies over the image."""
    lit = image.astype(np.float32) * (gain[..., None] if image.ndim == 3 else gain)
    return np.clip(lit + 0.5, 0, 255).astype(np.uint8)


def backlight(image, stops):
    """Light from behind the subject: the corners ``stops`` brighter than the centre, which
    darkens by a third of that (a bright window or sky behind a dark face; highlights clip)."""
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((x + 0.5) / w - 0.5, (y + 0.5) / h - 0.5) / np.hypot(0.5, 0.5)     # 0 centre, 1 corners
    return _gain(image, 2.0 ** (stops * (r - 1 / 3)))


def uneven(image, stops):
    """Light from one side: the image's right ``stops`` brighter than its left."""
    w = image.shape[1]
    ramp = (np.arange(w, dtype=np.float32) + 0.5) / w - 0.5
    return _gain(image, np.broadcast_to(2.0 ** (stops * ramp), image.shape[:2]))


def colour_cast(image, strength):
    """A warm cast (tungsten light): red times 1 + ``strength``, blue times 1 - ``strength``.
    The network sees gray, so a cast reaches it through the gray weights; a gray image is unchanged."""
    if image.ndim == 2:
        return image.copy()
    gains = np.array([1 + strength, 1.0, 1 - strength], np.float32)[:image.shape[2]]
    return np.clip(image.astype(np.float32) * gains + 0.5, 0, 255).astype(np.uint8)


DEGRADATIONS = {"blur": blur, "noise": noise, "jpeg": jpeg, "lowres": low_resolution, "gamma": gamma,
                "backlight": backlight, "uneven": uneven, "cast": colour_cast}


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
