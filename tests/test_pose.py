"""Head pose: angles recovered from keypoints projected at known angles, and the sign convention."""
import itertools

import numpy as np
import pytest

import markup
import pose
import geometry

ANGLES = list(itertools.product((-45, -20, 0, 30), (-25, 0, 20), (-30, 0, 15)))


def posed(yaw, pitch, roll, noise=0.0, seed=0):
    points = pose.project(yaw, pitch, roll, (40, -20, 700), 640, 480)
    return points + np.random.default_rng(seed).normal(0, noise, points.shape)


def worst_error(noise):
    errors = [np.abs(np.subtract(list(pose.head_pose(posed(*a, noise, i), 640, 480).values()), a)).max()
              for i, a in enumerate(ANGLES)]
    return max(errors)


def test_angles_are_recovered_from_projected_keypoints():
    assert worst_error(noise=0.0) < 0.1          # exact points: only the 0.1 degree rounding
    assert worst_error(noise=0.5) < 2.0          # half a pixel of noise on a face ~150 px wide


def test_rotation_and_angles_invert_each_other():
    for a in ANGLES:
        np.testing.assert_allclose(pose.angles(pose.rotation(*a)), a, atol=1e-9)


@pytest.mark.parametrize("axis", ["yaw", "pitch", "roll"])
def test_sign_convention_in_the_image(axis):
    frontal = posed(0, 0, 0)
    turned = posed(**{"yaw": 0, "pitch": 0, "roll": 0, axis: 20})
    nose, eyes = turned[30] - frontal[30], turned[[36, 45]]
    if axis == "yaw":       # the face turns towards the image's right
        assert nose[0] > 5
    if axis == "pitch":     # the face tilts up
        assert nose[1] < -5
    if axis == "roll":      # clockwise: the right-eye corner (36) rises above the left (45)
        assert eyes[0, 1] < eyes[1, 1] - 5


def test_a_mirrored_face_has_opposite_yaw_and_roll(train_set):
    """On annotated faces: mirroring the image negates yaw and roll and keeps pitch."""
    for i in (0, 100, 2000):
        item = train_set[i]
        height, width = item["image"].shape[:2]
        mirrored = geometry.mirror_points(item["keypoints"], width)
        a, b = pose.head_pose(item["keypoints"], width, height), pose.head_pose(mirrored, width, height)
        assert b["yaw"] == pytest.approx(-a["yaw"], abs=1.5) and b["roll"] == pytest.approx(-a["roll"], abs=1.5)
        assert b["pitch"] == pytest.approx(a["pitch"], abs=1.5)


def test_axes_are_drawn_on_the_face():
    canvas = np.zeros((480, 640, 3), np.uint8)
    pose.draw_axes(canvas, posed(0, 0, 0))
    ys, xs = np.nonzero(canvas.any(2))
    bridge = posed(0, 0, 0)[27]
    assert len(xs) > 100 and abs(np.median(xs) - bridge[0]) < 60 and abs(np.median(ys) - bridge[1]) < 60


def test_turn_amount_grows_with_yaw_and_ignores_mirroring_roll_scale_and_place():
    rng = np.random.default_rng(0)
    yaws = np.linspace(-40, 40, 33)
    faces = []
    for yaw in yaws:
        points = pose.project(yaw, rng.uniform(-10, 10), rng.uniform(-20, 20), (0, 0, 700), 640, 480)
        faces.append(points * rng.uniform(0.5, 2) + rng.uniform(-100, 100, 2))
    turn = pose.turn_amount(np.array(faces))
    order = np.argsort(np.abs(yaws), kind="stable")
    assert np.corrcoef(np.abs(yaws), turn)[0, 1] > 0.98
    assert turn[order[0]] < 0.1 * turn[order[-1]]                      # frontal: next to nothing
    mirrored = np.array(faces)[:, markup.FLIP_PERMUTATION] * [-1, 1]
    np.testing.assert_allclose(pose.turn_amount(mirrored), turn, rtol=1e-6, atol=1e-9)
