"""pseudo_label.py: the teacher's face is the one over the annotated points; the filter measures
disagreement beyond the markups' mean difference; train.py's --extra-dirs only trains."""
import numpy as np
import pytest

import pseudo_label
import train
import train_data
from test_data_300w import face_points, write_image
import data_300w as w


class Box:
    def __init__(self, left, top, right, bottom):
        self.box = left, top, right, bottom

    def left(self):
        return self.box[0]

    def top(self):
        return self.box[1]

    def right(self):
        return self.box[2]

    def bottom(self):
        return self.box[3]


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


class FakeDlib:
    """dlib's interface: a detector returning fixed boxes, a predictor placing points in its box."""

    def __init__(self, boxes, points):
        self.boxes, self.points, self.asked = boxes, points, []

    def detector(self, image, upsample):
        return self.boxes

    def predictor(self, image, box):
        self.asked.append(box)
        shape = type("Shape", (), {})()
        shape.parts = lambda: [Point(x, y) for x, y in self.points]
        return shape


def test_the_teacher_labels_the_detection_over_the_hand_placed_points():
    truth = face_points(0)                                          # around (100, 100) in a 200 px image
    teacher_points = np.round(truth) - 3
    lo, hi = truth.min(0), truth.max(0)
    elsewhere, over = Box(0, 0, 20, 20), Box(*lo.astype(int), *hi.astype(int))
    fake = FakeDlib([elsewhere, over], teacher_points)
    points = pseudo_label.dlib_points(None, fake.detector, fake.predictor, None, truth)
    assert fake.asked == [over]
    np.testing.assert_allclose(points, teacher_points + w.DLIB_OFFSET)
    fake = FakeDlib([elsewhere], teacher_points)                    # no box over the face: no label
    assert pseudo_label.dlib_points(None, fake.detector, fake.predictor, None, truth) is None


def test_markup_residual_ignores_the_mean_markup_difference_at_any_pose_and_size():
    rng = np.random.default_rng(0)
    truth = np.stack([face_points(i) for i in range(12)])
    truth[:, 36], truth[:, 45] = truth[:, 36] * 0 + (70, 90), truth[:, 45] * 0 + (130, 90)
    offset = rng.normal(0, 0.05, (68, 2))                            # one markup difference, in eye units
    teacher = []
    for k, face in enumerate(truth):                                 # each face turned and scaled
        angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.5, 2.0)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        truth[k] = (face - 100) @ rot.T * scale + 100
        eye = np.linalg.norm(truth[k, 45] - truth[k, 36])
        teacher.append(truth[k] + offset @ rot.T * eye)
    teacher = np.stack(teacher)
    np.testing.assert_allclose(pseudo_label.markup_residual(teacher, truth), 0, atol=1e-5)
    teacher[3, 10, 0] += 6.8 * np.linalg.norm(truth[3, 45] - truth[3, 36])     # one wild point on face 3
    residual = pseudo_label.markup_residual(teacher, truth)
    assert residual[3] == pytest.approx(0.1 * 11 / 12, rel=0.02)
    assert np.all(np.delete(residual, 3) < 0.01)


def test_extra_dirs_add_training_faces_and_leave_validation_alone(tmp_path):
    for sub, n in (("wild", 10), ("extra", 4)):
        (tmp_path / sub).mkdir()
        for i in range(n):
            write_image(tmp_path / sub / f"{sub}{i}.png", size=60, seed=i)
            w.write_pts(tmp_path / sub / f"{sub}{i}.pts", face_points(i, size=60))
    common = dict(datasets="300w", wild_dirs=str(tmp_path / "wild"), cache_dir=str(tmp_path / "cache"),
                  framing="keypoints", val_fraction=0.2, input_size=48)
    base_train, base_val = train_data.wild_sets(train.TrainConfig(**common))
    more_train, more_val = train_data.wild_sets(train.TrainConfig(**common, extra_dirs=str(tmp_path / "extra")))
    assert more_val.names == base_val.names and len(base_val) == 2
    assert more_train.names == base_train.names + [f"extra{i}" for i in range(4)]
