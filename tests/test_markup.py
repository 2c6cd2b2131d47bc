"""One module owns the 68-point markup; the runtime reads no training code; figures show the sides."""
import os
import subprocess
import sys

import matplotlib
import numpy as np

import markup
from conftest import ROOT

matplotlib.use("Agg")


def test_the_flip_permutation_is_an_involution_that_mirrors_each_part():
    perm = markup.FLIP_PERMUTATION
    np.testing.assert_array_equal(perm[perm], np.arange(markup.NUM_KEYPOINTS))
    for name, (indices, _) in markup.FACE_PARTS.items():
        mirror = name.replace("left", "@").replace("right", "left").replace("@", "right")
        assert sorted(perm[list(indices)]) == sorted(markup.FACE_PARTS[mirror][0]), name
    midline = [27, 28, 29, 30, 33, 51, 57, 62, 66, 8]
    np.testing.assert_array_equal(perm[midline], midline)
    assert perm[markup.RIGHT_EYE_OUTER] == markup.LEFT_EYE_OUTER
    np.testing.assert_array_equal(perm[markup.RIGHT_EYE], markup.LEFT_EYE[[3, 2, 1, 0, 5, 4]])


def test_the_sides_split_every_mirrored_pair():
    right, left = set(markup.RIGHT_SIDE), set(markup.LEFT_SIDE)
    assert not right & left and len(right) == len(left) == 29
    assert markup.RIGHT_EYE_OUTER in right and 0 in right and markup.LEFT_EYE_OUTER in left and 16 in left


def test_the_parts_cover_the_68_points_once():
    covered = sorted(i for indices, _ in markup.FACE_PARTS.values() for i in indices)
    assert covered == list(range(markup.NUM_KEYPOINTS))


RUNTIME = ["detect", "pipeline", "keypointer", "face_detector", "framing", "tracking", "video", "pose", "overlay"]
TRAINING_ONLY = ["data_load", "train", "train_data", "losses", "degrade", "train_face_score", "train_refiner",
                 "torchvision", "pandas"]


def test_the_runtime_imports_no_training_code():
    code = (f"import sys; sys.path.insert(0, {ROOT!r})\n"
            f"import {', '.join(RUNTIME)}\n"
            f"from keypointer import Keypointer\n"
            f"Keypointer({os.path.join(ROOT, 'saved_models', 'keypointnet.pt')!r}, 'torch')   # rebuilds the net\n"
            f"print(sorted(m for m in {TRAINING_ONLY!r} if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_side_colouring_marks_the_subjects_right_orange_and_left_blue(train_set):
    import matplotlib.pyplot as plt
    import visualize
    item = train_set[0]
    fig, ax = plt.subplots()
    visualize.show_keypoints(ax, item["image"], item["keypoints"], sides=True)
    colours = ax.collections[-1].get_facecolors()
    plt.close(fig)
    orange, blue = matplotlib.colors.to_rgba("orange"), matplotlib.colors.to_rgba("deepskyblue")
    points, perm = np.asarray(item["keypoints"]), markup.FLIP_PERMUTATION
    for i in range(markup.NUM_KEYPOINTS):
        if perm[i] == i:
            np.testing.assert_allclose(colours[i], matplotlib.colors.to_rgba("white"))
            continue
        on_image_left = points[i, 0] < points[perm[i], 0]      # a frontal face: the subject's right
        np.testing.assert_allclose(colours[i], orange if on_image_left else blue, err_msg=str(i))
