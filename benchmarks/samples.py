"""scikit-image's sample images as 8-bit gray arrays (the benchmarks' face-free images)."""
import numpy as np

from face_detector import to_gray


def gray_sample(name):
    """scikit-image's sample ``name`` as (H, W) uint8 gray, whatever its stored type."""
    from skimage import data
    image = np.asarray(getattr(data, name)())
    image = image.astype(np.float64) if image.dtype == bool else image
    if image.dtype != np.uint8:
        image = (255 * (image - image.min()) / max(1e-9, np.ptp(image))).astype(np.uint8)
    return to_gray(image[..., :3]) if image.ndim == 3 else image
