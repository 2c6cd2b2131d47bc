"""300-W's layout (image + .pts) and dlib's XML: conventions, bad files, the face cache."""
import os

import cv2
import numpy as np
import pytest

import data_300w as w
from data_files import DataError
import geometry


def face_points(seed=0, size=200):
    """68 plausible points inside a ``size`` image: a random similarity of a mean-ish face."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    base = np.stack([np.cos(angles), np.sin(angles)], 1) * rng.uniform(0.5, 1.0, (68, 1))
    return (base * size * 0.25 + size / 2 + rng.uniform(-5, 5, 2)).astype(np.float32)


def write_image(path, size=200, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (size, size, 3), np.uint8)
    assert cv2.imwrite(str(path), image)
    return image


def write_xml(path, images):
    """A dlib/imglab XML: images = [(file, [(points (68, 2) 0-based, ignore), ...])]."""
    lines = ["<?xml version='1.0' encoding='ISO-8859-1'?>", "<dataset><name>test</name><images>"]
    for file, boxes in images:
        lines.append(f"  <image file='{file}'>")
        for points, ignore in boxes:
            lo, hi = points.min(0), points.max(0)
            flag = " ignore='1'" if ignore else ""
            lines.append(f"    <box top='{int(lo[1])}' left='{int(lo[0])}' width='{int(hi[0] - lo[0])}' "
                         f"height='{int(hi[1] - lo[1])}'{flag}>")
            lines += [f"      <part name='{i:02d}' x='{x:g}' y='{y:g}'/>" for i, (x, y) in enumerate(points)]
            lines.append("    </box>")
        lines.append("  </image>")
    lines.append("</images></dataset>")
    path.write_text("\n".join(lines))


@pytest.fixture
def folder(tmp_path):
    """A 300-W-layout folder: one image with one face (webp), one with two faces (png)."""
    root = tmp_path / "300w"
    (root / "sub").mkdir(parents=True)
    write_image(root / "a.webp", seed=1)
    w.write_pts(root / "a.pts", face_points(1))
    write_image(root / "sub" / "b.png", seed=2)
    w.write_pts(root / "sub" / "b_1.pts", face_points(2))
    w.write_pts(root / "sub" / "b_2.pts", face_points(3))
    return root


def test_pts_is_one_based_and_round_trips(tmp_path):
    path = tmp_path / "x.pts"
    lines = [f"{i + 1} {2 * i + 1}" for i in range(68)]
    path.write_text("version: 1\nn_points:  68\n{\n" + "\n".join(lines) + "\n}\n")
    points = w.read_pts(path)
    np.testing.assert_allclose(points[:, 0], np.arange(68) + 0.5)   # 1-based centre 1 -> continuous 0.5
    np.testing.assert_allclose(points[:, 1], 2 * np.arange(68) + 0.5)
    w.write_pts(tmp_path / "y.pts", points)
    np.testing.assert_allclose(w.read_pts(tmp_path / "y.pts"), points, atol=1e-3)
    assert (tmp_path / "y.pts").read_text().splitlines()[3] == "1.000 1.000"


@pytest.mark.parametrize("body, message", [
    ("\n".join(["1 2"] * 67), "expected 68 points, found 67"),
    ("\n".join(["1 2"] * 67 + ["1 x"]), "not two numbers"),
    ("\n".join(["1 2"] * 67 + ["1 nan"]), "not two finite numbers"),
])
def test_bad_pts_names_the_file(tmp_path, body, message):
    path = tmp_path / "bad.pts"
    path.write_text("version: 1\nn_points: 68\n{\n" + body + "\n}\n")
    with pytest.raises(DataError, match=f"bad.pts: .*{message}"):
        w.read_pts(path)
    path.write_text("no braces here")
    with pytest.raises(DataError, match="bad.pts: not a .pts file"):
        w.read_pts(path)


def test_folder_scan_finds_every_face_with_its_image(folder):
    faces = w.scan_300w(str(folder))
    assert [f.name for f in faces] == ["a", os.path.join("sub", "b_1"), os.path.join("sub", "b_2")]
    assert [os.path.basename(f.image_path) for f in faces] == ["a.webp", "b.png", "b.png"]
    np.testing.assert_allclose(faces[2].keypoints, face_points(3), atol=1e-3)
    item = w.PhotoFaces(faces)[1]
    assert item["image"].shape == (200, 200, 3) and item["keypoints"].shape == (68, 2)


def test_folder_scan_rejects_orphans(folder):
    write_image(folder / "lonely.jpg")
    with pytest.raises(DataError, match="lonely.jpg: image without a .pts"):
        w.scan_300w(str(folder))
    os.remove(folder / "lonely.jpg")
    w.write_pts(folder / "ghost.pts", face_points())
    with pytest.raises(DataError, match="ghost.pts: no image of the same name"):
        w.scan_300w(str(folder))


def test_unreadable_image_names_the_file(folder):
    (folder / "a.webp").write_bytes(b"not an image at all")
    faces = w.scan_300w(str(folder))
    with pytest.raises(DataError, match="a.webp: not a readable image"):
        w.PhotoFaces(faces)[0]
    with pytest.raises(DataError, match="a.webp"):
        w.build_face_cache(faces, cache_dir=str(folder / "cache"))


def test_dlib_xml_matches_the_pts_convention(tmp_path, folder):
    pts_faces = w.scan_300w(str(folder))
    zero_based = [f.keypoints - w.DLIB_OFFSET for f in pts_faces]   # what dlib's tools write
    write_xml(tmp_path / "labels.xml", [("300w/a.webp", [(zero_based[0], False)]),
                                        ("300w/sub/b.png", [(zero_based[1], False), (zero_based[2], True)])])
    faces = w.read_faces(str(tmp_path / "labels.xml"))
    assert len(faces) == 2 and faces[1].image_path.endswith("b.png")     # the ignored box is skipped
    for xml_face, pts_face in zip(faces, pts_faces):
        np.testing.assert_allclose(xml_face.keypoints, pts_face.keypoints, atol=1e-3)


def test_bad_dlib_xml_names_the_file(tmp_path):
    write_xml(tmp_path / "few.xml", [("a.png", [(face_points()[:60], False)])])
    with pytest.raises(DataError, match="few.xml: a.png box 0: expected 68 parts, found 60"):
        w.read_dlib_xml(str(tmp_path / "few.xml"))
    (tmp_path / "broken.xml").write_text("<dataset><images>")
    with pytest.raises(DataError, match="broken.xml: not an XML file"):
        w.read_dlib_xml(str(tmp_path / "broken.xml"))
    with pytest.raises(DataError, match="nowhere: not a folder in 300-W's layout"):
        w.read_faces("nowhere")


def test_split_by_image_keeps_faces_of_an_image_together(folder):
    faces = w.scan_300w(str(folder)) * 1
    faces += [w.Face(f"img{i}.png", face_points(i), f"img{i}") for i in range(20)]
    train, val = w.split_by_image(faces, 0.25, seed=0)
    assert sorted(train + val) == list(range(len(faces)))
    images = lambda idx: {faces[i].image_path for i in idx}   # noqa: E731
    assert not images(train) & images(val)
    assert (1 in val) == (2 in val)                             # b_1 and b_2 share b.png
    assert (train, val) == w.split_by_image(faces, 0.25, seed=0)
    assert val != w.split_by_image(faces, 0.25, seed=1)[1]


def test_face_cache_crops_map_back_and_load_from_disk(folder, tmp_path):
    faces = w.scan_300w(str(folder))
    calls = []

    def measure(gray, keypoints):
        calls.append(gray.shape)
        return (0.1, -0.1, 1.9) if len(calls) == 1 else None
    crops, keypoints, framings = w.build_face_cache(faces, measure, str(tmp_path / "cache"))
    assert crops.shape == (3, w.CACHE_SIZE, w.CACHE_SIZE) and crops.dtype == np.uint8
    assert calls == [(200, 200)] * 3
    np.testing.assert_allclose(framings[0], (0.1, -0.1, 1.9))
    assert np.isnan(framings[1:]).all()
    for face, points in zip(faces, keypoints):        # crop frame -> image frame = the annotation
        square = geometry.face_square(face.keypoints, w.CACHE_SCALE)
        np.testing.assert_allclose(geometry.uncrop_points(points, square, w.CACHE_SIZE), face.keypoints, atol=1e-3)
    again = w.build_face_cache(faces, measure, str(tmp_path / "cache"))
    assert len(calls) == 3                               # read from the cache, not measured again
    for a, b in zip(again, (crops, keypoints, framings)):
        np.testing.assert_array_equal(a, b)
    w.write_pts(folder / "a.pts", face_points(9))          # changed annotation: a new cache entry
    w.build_face_cache(w.scan_300w(str(folder)), measure, str(tmp_path / "cache"))
    assert len(calls) == 6 and len(os.listdir(tmp_path / "cache")) == 2


def tiny_checkpoint(path):
    import models
    from checkpoint import save_checkpoint
    config = {"arch": "heatmapnet", "input_size": 64, "width": [8, 16, 24, 32], "neck": 16}
    save_checkpoint({"config": {"model": config}, "model": models.build_model(config).state_dict()}, str(path))
    return str(path)


def test_evaluate_scores_a_folder_and_the_300w_subsets(tmp_path):
    import json
    import evaluate
    for sub, n in (("lfpw/testset", 2), ("helen/testset", 3), ("ibug", 1)):
        (tmp_path / "300W" / sub).mkdir(parents=True)
        for i in range(n):
            write_image(tmp_path / "300W" / sub / f"f{i}.png", seed=i)
            w.write_pts(tmp_path / "300W" / sub / f"f{i}.pts", face_points(i))
    model = tiny_checkpoint(tmp_path / "m.pt")
    evaluate.main(["--checkpoint", model, "--300w-root", str(tmp_path / "300W"), "--json", str(tmp_path / "s.json")])
    subsets = json.load(open(tmp_path / "s.json"))
    assert {k: v["faces"] for k, v in subsets.items()} == {"common": 5, "challenging": 1, "full": 6}
    assert all(0 < v["nme"] < 10 and v["framing"] == "gt" for v in subsets.values())
    evaluate.main(["--checkpoint", model, "--faces", str(tmp_path / "300W" / "ibug"), "--framing", "haar",
                   "--json", str(tmp_path / "one.json")])
    one = json.load(open(tmp_path / "one.json"))
    assert one["faces"] == 1 and one["missed"] == 1 and one["nme"] == 0.10    # noise has no face: a failure
    with pytest.raises(SystemExit, match="nowhere: not a folder in 300-W's layout"):
        evaluate.main(["--checkpoint", model, "--faces", "nowhere"])


def test_a_reframe_ratio_under_one_is_a_one_line_usage_error(capsys):
    import evaluate
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["--reframe", "0.8"])
    assert exit_.value.code == 2 and "--reframe: 0.8: give a ratio above 1, or 0 for never" in capsys.readouterr().err


def test_dlib_sets_hold_out_what_training_holds_out(tmp_path):
    """benchmarks/dlib_sets.py scores the validation faces train.py's defaults hold out of the
    model card's training folders, and LFPW's two folders whole."""
    import train
    from benchmarks.dlib_sets import SEED, TRAINING_FOLDERS, VAL_FRACTION, photograph_sets
    assert (VAL_FRACTION, SEED) == (train.TrainConfig.val_fraction, train.TrainConfig.seed)
    counts = {"afw": 6, "helen/trainset": 7, "lfpw/trainset": 5, "lfpw/testset": 3}
    for sub, n in counts.items():
        (tmp_path / sub).mkdir(parents=True)
        for i in range(n):
            write_image(tmp_path / sub / f"f{i}.png", size=40, seed=i)
            w.write_pts(tmp_path / sub / f"f{i}.pts", face_points(i, size=40))
    sets = photograph_sets(str(tmp_path))
    val, lfpw_train, lfpw_test = sets.values()
    training = w.read_sources([str(tmp_path / d) for d in TRAINING_FOLDERS])
    _, held = w.split_by_image(training, VAL_FRACTION, SEED)
    assert val.names == [training[i].name for i in held] and len(val) == 2     # 10 % of 18 images
    assert (len(lfpw_train), len(lfpw_test)) == (5, 3)
