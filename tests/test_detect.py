"""The detection pipeline: ROI geometry, framing, real images, video, and bad input."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import data_files
import data_load as dl
import detect
import framing
import pipeline as pl
import video
from conftest import ROOT, SHIPPED_MODEL
from keypointer import Keypointer
import face_detector
import geometry


class CentreKeypointer:
    """A stand-in model that puts all 68 points at the centre of every crop."""
    input_size, framing_scale = 64, geometry.FRAMING_SCALE

    def __call__(self, crops):
        return np.full((len(crops), 68, 2), self.input_size / 2, np.float32)

    def predict(self, crops):
        return self(crops), None


@pytest.fixture(scope="module")
def pipeline():
    return face_detector.FaceDetector(), Keypointer(SHIPPED_MODEL)


@pytest.fixture(scope="module")
def astronaut_faces(pipeline):
    return pl.detect_keypoints(detect.sample_image(), *pipeline)


def test_pad_box_grows_by_the_margin_and_clamps():
    assert framing.pad_box((100, 100, 50, 40), 0.2, 500, 500) == (90, 92, 70, 56)
    x, y, w, h = framing.pad_box((5, 3, 50, 50), 0.3, 60, 55)
    assert (x, y) == (0, 0) and x + w == 60 and y + h == 55


def test_roi_square_size_and_shift():
    x, y, side = framing.roi_square((100, 100, 50, 50), margin=0.3, center_shift=0.2)
    assert side == pytest.approx(80)
    assert (x + side / 2, y + side / 2) == pytest.approx((125, 135))


def test_keypoints_map_back_to_the_roi_in_image_coordinates():
    gray = np.zeros((300, 400), np.uint8)
    squares = [(10.0, 20.0, 100.0), (-30.0, 250.0, 80.0)]        # the second leaves the image
    kp = pl.keypoints_for_squares(gray, squares, CentreKeypointer(), refine=0)
    np.testing.assert_allclose(kp[:, 0], [[60, 70], [10, 290]], atol=1e-4)


def test_padded_haar_roi_matches_the_training_framing(data_dir):
    """Haar boxes are tight; with the 0.3 margin and centre shift the crop has the
    training framing (square around the keypoints) up to detector jitter."""
    dataset = dl.FacialKeypointsDataset(*data_files.split_paths(data_dir, "train"))
    detector, stats = face_detector.FaceDetector(), {0.0: [], 0.3: []}
    for i in range(0, len(dataset), 60):
        item = dataset[i]
        boxes = detector(face_detector.to_gray(item["image"]))
        x, y, side = geometry.face_square(item["keypoints"])
        centres = boxes[:, :2] + boxes[:, 2:] / 2
        if not len(boxes):
            continue
        box = boxes[np.argmin(np.linalg.norm(centres - [x + side / 2, y + side / 2], axis=1))]
        for margin in stats:
            rx, ry, rside = framing.roi_square(box, margin)
            offset = np.hypot(rx + rside / 2 - x - side / 2, ry + rside / 2 - y - side / 2)
            stats[margin].append((rside / side, offset / side))
    padded, tight = np.median(stats[0.3], axis=0), np.median(stats[0.0], axis=0)
    assert len(stats[0.3]) >= 50
    assert 0.92 < padded[0] < 1.08 and padded[1] < 0.06
    assert tight[0] < 0.65                                  # the bare Haar box is far too tight


def test_fallback_cascade_finds_the_small_face_the_default_one_misses(data_dir):
    dataset = dl.FacialKeypointsDataset(*data_files.split_paths(data_dir, "test"))
    i = dataset.names.index("James_Wolfensohn_00.jpg")      # a 103 x 89 image, face filling it
    gray = face_detector.to_gray(dataset.image(i))
    assert len(face_detector.FaceDetector(fallback=None)(gray)) == 0
    boxes = face_detector.FaceDetector()(gray)
    assert framing.match_box(boxes, dataset.keypoints[i]) is not None


def test_measured_framings_describe_the_roi_around_the_keypoint_box(data_dir):
    csv_file, image_dir = data_files.split_paths(data_dir, "train")
    dataset = dl.FacialKeypointsDataset(csv_file, image_dir, indices=range(0, 3000, 100))
    framings = framing.measure_framings(dataset, face_detector.FaceDetector())
    assert framings.shape[1] == 3 and len(framings) >= 25
    u, v, r = np.median(framings, axis=0)
    assert abs(u) < 0.05 and abs(v) < 0.05 and 1.6 < r < 2.0   # centred, ~FRAMING_SCALE
    assert framings[:, 0].std() > 0.02                          # real detector jitter


def test_pipeline_finds_the_astronaut(astronaut_faces):
    image = detect.sample_image()
    assert len(astronaut_faces) == 1
    face = astronaut_faces[0]
    assert face["keypoints"].shape == (68, 2)
    x, y, w, h = framing.pad_box(face["box"], 0.3, image.shape[1], image.shape[0])
    kp = face["keypoints"]
    assert (kp[:, 0] > x).all() and (kp[:, 0] < x + w).all()
    assert (kp[:, 1] > y).all() and (kp[:, 1] < y + h).all()
    # anatomy: eyes above the nose tip above the mouth; the right eye (36-41) on the image's left
    assert kp[36:48, 1].mean() < kp[30, 1] < kp[48:68, 1].mean()
    assert kp[36:42, 0].mean() < kp[42:48, 0].mean()


def test_one_face_per_pasted_copy(pipeline, astronaut_faces):
    image = detect.sample_image()
    face = astronaut_faces[0]
    x, y, w, h = framing.pad_box(face["box"], 0.6, *image.shape[1::-1])
    patch = image[y:y + h, x:x + w]
    canvas = np.full((760, 1060, 3), 128, np.uint8)
    placements = [(40, 60, 1.0), (500, 80, 1.5), (300, 420, 0.8), (750, 450, 1.2)]
    for px, py, s in placements:
        resized = cv2.resize(patch, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        canvas[py:py + resized.shape[0], px:px + resized.shape[1]] = resized
    faces = pl.detect_keypoints(canvas, *pipeline)
    assert len(faces) == len(placements)
    eye = np.linalg.norm(face["keypoints"][36] - face["keypoints"][45])
    for px, py, s in placements:
        expected = (face["keypoints"] - [x, y]) * s + [px, py]
        errors = [np.linalg.norm(f["keypoints"] - expected, axis=1).mean() for f in faces]
        assert min(errors) < 0.08 * eye * s


def test_large_image_keeps_original_coordinates(pipeline, astronaut_faces):
    big = cv2.resize(detect.sample_image(), None, fx=5, fy=5, interpolation=cv2.INTER_CUBIC)
    faces = pl.detect_keypoints(big, *pipeline)      # largest face first
    assert np.allclose(faces[0]["box"], np.multiply(astronaut_faces[0]["box"], 5), atol=15)
    expected = astronaut_faces[0]["keypoints"] * 5
    eye = np.linalg.norm(expected[36] - expected[45])
    assert np.linalg.norm(faces[0]["keypoints"] - expected, axis=1).mean() < 0.08 * eye


def run_cli(args, cwd):
    return subprocess.run([sys.executable, os.path.join(ROOT, "detect.py"), *args],
                          capture_output=True, text=True, cwd=cwd)


def test_cli_default_sample_and_json(tmp_path):
    out = run_cli(["--json", "faces.json", "-o", "astro.png"], tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "faces.json").read_text())
    assert (record["image"], record["width"], record["height"]) == ("astronaut", 512, 512)
    assert len(record["faces"]) == 1 and len(record["faces"][0]["keypoints"]) == 68
    assert cv2.imread(str(tmp_path / "astro.png")).shape == (512, 512, 3)
    face_pose = record["faces"][0]["pose"]        # a nearly frontal face
    assert set(face_pose) == {"yaw", "pitch", "roll"} and all(abs(v) < 30 for v in face_pose.values())


def test_pose_axes_are_drawn_on_request(astronaut_faces):
    image = detect.sample_image()
    plain, with_axes = detect.draw_faces(image, astronaut_faces), detect.draw_faces(image, astronaut_faces, axes=True)
    changed = np.argwhere((plain != with_axes).any(2))
    x, y, w, h = astronaut_faces[0]["box"]
    assert len(changed) > 50 and (changed[:, 1].mean(), changed[:, 0].mean()) == pytest.approx((x + w / 2, y + h / 2), abs=w / 2)


def test_cli_video_end_to_end(tmp_path):
    image = cv2.cvtColor(detect.sample_image(), cv2.COLOR_RGB2BGR)[:480, :480]
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 480))
    for shift in range(0, 30, 6):
        writer.write(np.roll(image, shift, axis=1))
    writer.release()
    out = run_cli(["clip.mp4", "--json", "clip.json"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "frames/s" in out.stderr
    records = json.loads((tmp_path / "clip.json").read_text())
    assert len(records) == 5 and all(len(r["faces"]) == 1 for r in records)
    xs = [np.mean(r["faces"][0]["keypoints"], axis=0)[0] for r in records]
    assert np.all(np.diff(xs) > 2)                    # the face moves right, so do its points
    capture = cv2.VideoCapture(str(tmp_path / "outputs" / "clip_keypoints.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def write_variants(folder):
    """The sample as gray, RGBA and 16-bit files, a face-less image, and bad files."""
    rgb = detect.sample_image()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(folder / "rgba.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA))
    cv2.imwrite(str(folder / "deep.png"), bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "blank.png"), np.full((200, 300, 3), 90, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    (folder / "cut.jpg").write_bytes(cv2.imencode(".jpg", bgr)[1].tobytes()[:5000])


@pytest.mark.parametrize("name,faces", [("gray.png", 1), ("rgba.png", 1), ("deep.png", 1), ("blank.png", 0)])
def test_cli_handles_image_kinds(tmp_path, name, faces, capsys):
    write_variants(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        detect.main([str(tmp_path / name), "--json", str(tmp_path / "r.json"), "-o", str(tmp_path / "o.png")])
    assert exit_info.value.code == 0
    assert len(json.loads((tmp_path / "r.json").read_text())["faces"]) == faces
    if not faces:
        assert "no face found" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["missing.jpg"], "missing.jpg: no such file or directory"),
    (["notes.txt"], "notes.txt: not a readable image"),
    (["cut.jpg"], "cut.jpg: truncated image file"),
    (["--checkpoint", "none.pt"], "argument --checkpoint: none.pt: no such file"),
    (["--checkpoint", "notes.txt"], "notes.txt: not a readable checkpoint"),
    (["--cascade", "nope.xml"], "argument --cascade: nope.xml: cascade not found")])
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    write_variants(tmp_path)
    out = run_cli(args, tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), out.stderr


def test_folder_run_goes_on_past_bad_files(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    write_variants(folder)
    out = run_cli([str(folder), "--json", "all.json", "-o", "annotated"], tmp_path)
    assert out.returncode == 1
    assert "2 file(s) failed" in out.stderr and "notes.txt" in out.stderr and "cut.jpg" in out.stderr
    records = json.loads((tmp_path / "all.json").read_text())
    assert sorted(r["image"] for r in records) == ["blank.png", "deep.png", "gray.png", "rgba.png"]
    assert len(list((tmp_path / "annotated").iterdir())) == 4


def test_evaluation_pipeline_reuses_the_detectors_gray_image_only_for_that_image(pipeline):
    """cnn_pipeline's landmarks crop from the gray image find_boxes made (as detect_keypoints
    does), and convert afresh for any other image."""
    from evaluate import cnn_pipeline
    find_boxes, landmarks = cnn_pipeline(pipeline[1], "haar", pipeline[0])
    image = detect.sample_image()
    box = find_boxes(image)[0]
    fresh = pl.keypoints_for_boxes(face_detector.to_gray(image), box[None], pipeline[1])[0]
    np.testing.assert_array_equal(landmarks(image, box), fresh)
    darker = (image // 2).astype(np.uint8)
    fresh_dark = pl.keypoints_for_boxes(face_detector.to_gray(darker), box[None], pipeline[1])[0]
    np.testing.assert_array_equal(landmarks(darker, box), fresh_dark)
    assert not np.array_equal(fresh, fresh_dark)


class ShapeKeypointer(CentreKeypointer):
    """A stand-in model that places a fixed 68-point shape in the upper left of every crop."""
    shape = np.random.default_rng(5).uniform(8, 40, (68, 2)).astype(np.float32)

    def __call__(self, crops):
        return np.repeat(self.shape[None], len(crops), 0)


def test_each_refine_pass_reframes_the_crop_on_the_previous_keypoints(monkeypatch):
    calls, predict = [], pl.predict_rois

    def spy(gray, rois, keypointer):
        calls.append(np.array([sq for sq, _ in rois], np.float64))
        return predict(gray, rois, keypointer)
    monkeypatch.setattr(pl, "predict_rois", spy)
    gray, model = np.zeros((300, 400), np.uint8), ShapeKeypointer()
    out = pl.keypoints_for_squares(gray, [(10.0, 20.0, 100.0)], model, refine=2, align=None)
    assert len(calls) == 3
    first = geometry.uncrop_points(model.shape, calls[0][0], model.input_size)
    np.testing.assert_allclose(calls[1][0], geometry.face_square(first, model.framing_scale), atol=1e-4)
    np.testing.assert_allclose(out[0], geometry.uncrop_points(model.shape, calls[2][0], model.input_size), atol=1e-3)


def test_a_refine_pass_moves_the_real_models_points_a_little(pipeline, astronaut_faces):
    gray = face_detector.to_gray(detect.sample_image())
    box = np.array(astronaut_faces[0]["box"], np.float64)
    once, twice = (pl.keypoints_for_boxes(gray, box[None], pipeline[1], refine=r, reframe=None)[0] for r in (0, 1))
    eye = np.linalg.norm(once[36] - once[45])
    moved = np.linalg.norm(once - twice, axis=1).mean() / eye
    assert 0 < moved < 0.05


def test_a_camera_that_cannot_be_opened_is_one_line(tmp_path):
    out = run_cli(["--camera", "97"], tmp_path)
    assert out.returncode != 0 and out.stderr.strip() == "error: camera 97: cannot be opened"


class FakeCamera:
    """A camera that shows the astronaut a few times, then its user presses Ctrl-C."""
    def __init__(self, index, frames=4):
        self.left = frames

    def isOpened(self):
        return True

    def read(self):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return True, cv2.cvtColor(detect.sample_image()[:480, :480], cv2.COLOR_RGB2BGR)

    def release(self):
        pass


def test_camera_without_a_display_writes_a_complete_video_and_stops_on_ctrl_c(tmp_path, monkeypatch, pipeline, capsys):
    monkeypatch.setattr(detect.cv2, "VideoCapture", FakeCamera)
    monkeypatch.setattr(video, "no_window_reason", lambda: "this OpenCV has no GUI")
    out = tmp_path / "cam.mp4"

    def find(rgb, seconds):
        return pl.detect_keypoints(rgb, *pipeline)
    frames = video.run_camera(0, str(out), find, detect.draw_faces)
    monkeypatch.undo()
    written = cv2.VideoCapture(str(out))
    assert frames == 4 and int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    said = capsys.readouterr().err.splitlines()
    assert said[0] == f"camera 0: no window (this OpenCV has no GUI); writing the annotated stream to {out}, Ctrl-C stops"


def test_headless_opencv_says_why_there_is_no_window(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    assert "no GUI" in video.no_window_reason()         # the pinned opencv-python-headless
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert video.no_window_reason() == "no display"


def test_non_max_suppression_keeps_the_first_of_overlapping_boxes():
    from face_detector import non_max_suppression
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 10, 10], [0, 0, 30, 30], [21, 19, 9, 9]], float)
    # box 1 overlaps box 0 (IoU 0.68); box 3 contains box 0 (IoU 0.11: kept); box 4 overlaps box 2 (0.66)
    assert non_max_suppression(boxes).tolist() == [0, 2, 3]


def test_rotated_search_finds_a_tilted_face_and_maps_it_back():
    from face_detector import FaceDetector
    gray = face_detector.to_gray(detect.sample_image())
    h, w = gray.shape
    upright = FaceDetector()(gray)[0]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)          # the head tilted by 25 degrees
    tilted = cv2.warpAffine(gray, turn, (w, h))
    assert len(FaceDetector()(tilted)) == 0                         # the frontal cascade misses it
    centre = turn[:, :2] @ (upright[:2] + upright[2:] / 2) + turn[:, 2]
    boxes = FaceDetector(rotations=(-25, 25))(tilted)
    distances = np.linalg.norm(boxes[:, :2] + boxes[:, 2:] / 2 - centre, axis=1)
    assert distances.min() < 0.15 * upright[2]


def test_profile_search_is_mirror_symmetric():
    from face_detector import FaceDetector
    gray = face_detector.to_gray(detect.sample_image())
    detector = FaceDetector(profile=True)
    boxes, mirrored = detector(gray), detector(np.ascontiguousarray(gray[:, ::-1]))
    mirrored[:, 0] = gray.shape[1] - mirrored[:, 0] - mirrored[:, 2]
    assert len(boxes) == len(mirrored) >= 1      # the cascades themselves are only nearly symmetric
    np.testing.assert_allclose(sorted(map(tuple, boxes)), sorted(map(tuple, mirrored)), atol=0.05 * boxes[0, 2])


def test_extra_searches_keep_every_upright_box():
    """The frontal cascade may return two overlapping boxes, the right one second: NMS must only
    drop the extra searches' boxes, or the options would lose faces the default finds."""
    from face_detector import non_max_suppression
    boxes = np.array([[31, 27, 63, 63], [38, 53, 58, 58], [40, 50, 60, 60]], float)
    assert non_max_suppression(boxes, always=2).tolist() == [0, 1]


def test_the_wider_search_runs_only_where_the_upright_one_finds_no_face(monkeypatch):
    from face_detector import FaceDetector
    keypointer, gray = Keypointer(), face_detector.to_gray(detect.sample_image())
    detector = FaceDetector(profile=True, rotations=(-25, 25), only_when_empty=True)

    def forbidden(*args):
        raise AssertionError("the wider search ran on an image with an upright face")
    monkeypatch.setattr(detector, "_rotated", forbidden)
    monkeypatch.setattr(detector, "_profiles", forbidden)
    assert len(pl.detect_keypoints(gray, detector, keypointer)) == 1
    monkeypatch.undo()
    h, w = gray.shape
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    tilted = cv2.warpAffine(gray, turn, (w, h))
    nose = turn[:, :2] @ pl.detect_keypoints(gray, FaceDetector(), keypointer)[0]["keypoints"][30] + turn[:, 2]
    assert pl.detect_keypoints(tilted, FaceDetector(), keypointer) == []        # upright: nothing
    assert len(pl.detect_keypoints(tilted, detector, keypointer)) == 1

    class Fooled(FaceDetector):
        """Its upright search finds only a box on the background."""
        def detect(self, image, wider_only=False):
            return super().detect(image, True) if wider_only else (np.array([[400.0, 420.0, 80.0, 80.0]]), np.zeros(1))
    faces = pl.detect_keypoints(tilted, Fooled.searching("if-none"), keypointer)
    assert len(faces) == 1 and np.linalg.norm(faces[0]["keypoints"][30] - nose) < 10


def test_cli_default_search_finds_a_tilted_face_that_upright_misses(tmp_path):
    gray = face_detector.to_gray(detect.sample_image())
    h, w = gray.shape
    cv2.imwrite(str(tmp_path / "tilted.png"), cv2.warpAffine(gray, cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0), (w, h)))
    found = {}
    for search in ("default", "upright"):
        out = run_cli(["tilted.png", "--json", f"{search}.json"] + (["--search", search] if search != "default" else []),
                      tmp_path)
        assert out.returncode == 0, out.stderr
        found[search] = len(json.loads((tmp_path / f"{search}.json").read_text())["faces"])
    assert found == {"default": 1, "upright": 0}


def face_beside_turned_face():
    """The astronaut's face, and beside it the same face turned by 25 degrees."""
    gray = face_detector.to_gray(detect.sample_image())
    x, y, w, h = face_detector.FaceDetector()(gray)[0].astype(int)
    cx, cy, r = x + w // 2, y + h // 2, int(1.3 * w)
    crop = gray[max(0, cy - r):cy + r, cx - r:cx + r]
    side = crop.shape[0]
    turned = cv2.warpAffine(crop, cv2.getRotationMatrix2D((side / 2, side / 2), 25, 1.0), (side, side),
                            borderMode=cv2.BORDER_REPLICATE)
    return np.hstack([crop, turned]), crop.shape[1]


def test_a_found_face_does_not_hide_a_turned_one():
    from face_detector import FaceDetector
    canvas, split = face_beside_turned_face()
    keypointer = Keypointer()
    found = {search: pl.detect_keypoints(canvas, FaceDetector.searching(search), keypointer)
             for search in ("upright", "if-none", "uncovered")}
    assert [len(found[s]) for s in ("upright", "if-none", "uncovered")] == [1, 1, 2]
    turned = [f for f in found["uncovered"] if f["box"][0] > split]
    assert len(turned) == 1 and abs(pl.roll_degrees(turned[0]["keypoints"]) + 25) < 8     # turned counter-clockwise


def test_right_angle_search_gives_the_upright_keypoints_turned():
    """A photo stored sideways or upside down: the face is found on a copy turned back, and
    its keypoints land on the image as given, where the upright face's keypoints go."""
    from face_detector import FaceDetector
    keypointer, gray = Keypointer(), face_detector.to_gray(detect.sample_image())
    upright = pl.detect_keypoints(gray, FaceDetector(), keypointer)[0]["keypoints"]
    detector = FaceDetector(right_angles=(90, 180, 270))
    points, (h, w) = upright.copy(), gray.shape
    for turns in (1, 2, 3):
        points, (h, w) = np.stack([points[:, 1], w - points[:, 0]], 1), (w, h)   # np.rot90's turn, in pixels
        turned = np.ascontiguousarray(np.rot90(gray, turns))
        assert pl.detect_keypoints(turned, FaceDetector(), keypointer) == []
        faces = pl.detect_keypoints(turned, detector, keypointer)
        assert len(faces) == 1
        assert np.abs(faces[0]["keypoints"] - points).max() < 3, turns


def test_minimum_face_is_relative_and_upsampling_finds_smaller_faces():
    from face_detector import FaceDetector
    detector = FaceDetector()
    assert detector.search_scale((3000, 4000)) == pytest.approx(24 / 187.5)   # 1/16 of 3000 px
    assert detector.search_scale((480, 640)) == pytest.approx(24 / 30)        # 30 px on a 640x480 frame
    assert detector.search_scale((100, 100)) == 1                             # never under the 24 px window
    assert FaceDetector(upsample=2).search_scale((60, 60)) == 4                 # enlarged at most 2 ** 2 times
    small = cv2.resize(face_detector.to_gray(detect.sample_image()), (102, 102), interpolation=cv2.INTER_AREA)
    assert len(detector(small)) == 0                      # a 19 px face: under the cascade's window
    faces = pl.detect_keypoints(small, FaceDetector(upsample=1), Keypointer())
    assert len(faces) == 1 and 15 < faces[0]["box"][2] < 30


@pytest.mark.parametrize("angle", [-45, 15, 90])
def test_a_turned_test_image_keeps_its_points_on_their_pixels(angle):
    """benchmarks/rotation.py turns images and annotations together, in the project's pixel
    convention (pixel i covers [i, i + 1))."""
    from benchmarks.rotation import turned
    image = np.zeros((60, 80), np.uint8)
    image[10:13, 20:23] = 255                              # a bright 3x3 patch centred on (21.5, 11.5)
    out, points = turned(image, np.array([[21.5, 11.5]]), angle)
    ys, xs = np.nonzero(out > 128)
    weights = out[ys, xs].astype(float)
    centre = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum() + 0.5
    assert np.abs(centre - points[0]).max() < 0.3
