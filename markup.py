"""The 68-point iBUG / Multi-PIE markup: every module that names a point imports it from here.

Indices are 0-based. Sides are the subject's: the right eye (36-41) appears on the image's
left. A horizontal flip maps point i of the mirrored face to point FLIP_PERMUTATION[i].
"""
import numpy as np

NUM_KEYPOINTS = 68

# name -> (indices, whether the outline closes); also the drawing order of the outline
FACE_PARTS = {"jaw": (range(0, 17), False), "right_brow": (range(17, 22), False),
              "left_brow": (range(22, 27), False), "nose_bridge": (range(27, 31), False),
              "nose_base": (range(31, 36), False), "right_eye": (range(36, 42), True),
              "left_eye": (range(42, 48), True), "outer_lips": (range(48, 60), True),
              "inner_lips": (range(60, 68), True)}

# the parts a block may hide (benchmarks/occlusion.py, the second stage's gate): brow and eye
# together, as sunglasses or a hand hide them
COVERED_PARTS = {"right eye": list(range(17, 22)) + list(range(36, 42)),
                 "left eye": list(range(22, 27)) + list(range(42, 48)),
                 "nose": list(range(27, 36)), "mouth": list(range(48, 68))}

# outer eye corners: the NME's normaliser, the roll of a face and the refiner's scale
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 36, 45
RIGHT_EYE, LEFT_EYE = np.arange(36, 42), np.arange(42, 48)

# each pair: (a point on the subject's right, its mirror on the left); the lower lips run
# from the subject's left back to its right, so their pairs start with the higher index
MIRROR_PAIRS = ([(i, 16 - i) for i in range(8)]                               # jaw
                + [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]          # brows
                + [(31, 35), (32, 34)]                                        # nostrils
                + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
                + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56)]          # outer lips
                + [(60, 64), (61, 63), (67, 65)])                             # inner lips


def _flip_permutation():
    permutation = np.arange(NUM_KEYPOINTS)
    for a, b in MIRROR_PAIRS:
        permutation[a], permutation[b] = b, a
    return permutation


FLIP_PERMUTATION = _flip_permutation()
# the subject's right side (the image's left) and its left side: one point of each mirrored pair
RIGHT_SIDE = np.array(sorted(a for a, b in MIRROR_PAIRS))
LEFT_SIDE = np.array(sorted(b for a, b in MIRROR_PAIRS))
