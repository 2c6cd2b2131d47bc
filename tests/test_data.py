"""The dataset on the shared data, decoding by content, bad input, and the download step."""
import os
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

import data_files
import data_load as dl
import download_data
from conftest import ROOT, write_csv


def test_dataset_on_the_shared_data(data_dir, train_set):
    test_set = dl.FacialKeypointsDataset(*data_files.split_paths(data_dir, "test"))
    assert (len(train_set), len(test_set)) == (3462, 770)
    item = test_set[5]
    assert item["image"].dtype == np.uint8 and item["image"].ndim == 3 and item["image"].shape[2] == 3
    assert item["keypoints"].shape == (68, 2) and item["keypoints"].dtype == np.float32
    h, w = item["image"].shape[:2]
    assert (item["keypoints"] >= -5).all() and (item["keypoints"][:, 0] <= w + 5).all()
    assert item["image"].max() > 1                     # 0..255, not floats in [0, 1]


def test_rgba_png_under_a_jpg_name_loads_like_the_webp(data_dir, tmp_path):
    name = "Abdel_Aziz_Al-Hakim_00.jpg"
    webp = data_files.load_image(os.path.join(data_dir, "training", name))
    rgba = np.dstack([webp, np.full(webp.shape[:2], 255, np.uint8)])
    path = tmp_path / name
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    path.write_bytes(png.tobytes())
    assert path.read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_array_equal(data_files.load_image(str(path)), webp)


def test_gray_and_16_bit_images_become_8_bit_rgb(tmp_path):
    gray16 = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)
    cv2.imwrite(str(tmp_path / "a.png"), gray16)
    image = data_files.load_image(str(tmp_path / "a.png"))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], (gray16 >> 8).astype(np.uint8))


def test_person_split_is_disjoint(train_set):
    train, val = data_files.split_by_person(train_set.names, 0.1, seed=0)
    assert len(train) + len(val) == len(train_set) and 0 < len(val) < len(train)
    people = lambda idx: {data_files.person_of(train_set.names[i]) for i in idx}  # noqa: E731
    assert not people(train) & people(val)
    assert data_files.person_of("Abdel_Aziz_Al-Hakim_10.jpg") == "Abdel_Aziz_Al-Hakim"


def test_keep_people_keeps_whole_people(train_set):
    train, _ = data_files.split_by_person(train_set.names, 0.1, seed=0)
    people = lambda idx: {data_files.person_of(train_set.names[i]) for i in idx}  # noqa: E731
    half = data_files.keep_people(train_set.names, train, 0.5, seed=0)
    assert len(people(half)) == round(0.5 * len(people(train)))
    assert half == [i for i in train if data_files.person_of(train_set.names[i]) in people(half)]
    assert half == data_files.keep_people(train_set.names, train, 0.5, seed=0)
    assert half != data_files.keep_people(train_set.names, train, 0.5, seed=1)
    assert data_files.keep_people(train_set.names, train, 1.0) == train
    with pytest.raises(ValueError, match="fraction of people"):
        data_files.keep_people(train_set.names, train, 0)


def test_missing_data_dir_names_the_folder(tmp_path):
    with pytest.raises(data_files.DataError, match="missing training_frames_keypoints.csv"):
        data_files.resolve_data_dir(str(tmp_path))


def test_wrong_column_count(tmp_path):
    (tmp_path / "k.csv").write_text(",0,1\na.jpg,1,2\n")
    with pytest.raises(data_files.DataError, match=r"k.csv: expected 137 columns"):
        data_files.read_keypoints_csv(str(tmp_path / "k.csv"))


def test_non_numeric_value_names_file_and_row(tmp_path):
    values = np.ones(136).astype(object)
    values[7] = "oops"
    write_csv(tmp_path / "k.csv", [("a.jpg", np.ones(136)), ("b.jpg", values)])
    with pytest.raises(data_files.DataError, match=r"k.csv: row 3 \(b.jpg\)"):
        data_files.read_keypoints_csv(str(tmp_path / "k.csv"))


@pytest.mark.parametrize("content,message", [(b"not an image", "not a readable image"),
                                             (b"", "not a readable image")])
def test_unreadable_image_names_the_file(tmp_path, content, message):
    (tmp_path / "x.jpg").write_bytes(content)
    with pytest.raises(data_files.DataError, match=f"x.jpg: {message}"):
        data_files.load_image(str(tmp_path / "x.jpg"))


def test_truncated_png_is_refused(tmp_path):
    ok, png = cv2.imencode(".png", np.full((40, 40, 3), 90, np.uint8))
    (tmp_path / "t.png").write_bytes(png.tobytes()[:-30])
    with pytest.raises(data_files.DataError, match="truncated"):
        data_files.load_image(str(tmp_path / "t.png"))


def test_train_cli_reports_bad_data_dir_in_one_line(tmp_path):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--data-dir", str(tmp_path),
                          "--dry-run"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode != 0
    assert run.stderr.strip().startswith("error:") and len(run.stderr.strip().splitlines()) == 1


def make_archive(path, data_dir, prefix, n=3):
    """A small archive in Udacity's layout, its images as RGBA PNG under .jpg names."""
    with zipfile.ZipFile(path, "w") as zf:
        for split in ("train", "test"):
            csv_file, image_dir = data_files.split_paths(data_dir, split)
            names, kps = data_files.read_keypoints_csv(csv_file)
            rows = list(zip(names[:n], kps[:n]))
            tmp_csv = str(path) + ".csv"
            write_csv(tmp_csv, rows)
            zf.write(tmp_csv, prefix + os.path.basename(csv_file))
            for name, _ in rows:
                rgb = data_files.load_image(os.path.join(image_dir, name))
                rgba = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
                zf.writestr(f"{prefix}{os.path.basename(image_dir)}/{name}",
                            cv2.imencode(".png", rgba)[1].tobytes())


@pytest.mark.parametrize("prefix", ["", "P1_Facial_Keypoints-master/data/"])
def test_download_from_a_url_verifies_and_unpacks(tmp_path, data_dir, prefix):
    archive = tmp_path / "train-test-data.zip"
    make_archive(archive, data_dir, prefix)
    target = tmp_path / "data"
    target.mkdir()
    (target / "README.md").write_text("keep me")
    rows = download_data.download(str(target), urls=("file:///nonexistent.zip", archive.as_uri()))
    assert rows == {"train": 3, "test": 3}
    assert (target / "README.md").read_text() == "keep me"
    ds = dl.FacialKeypointsDataset(*data_files.split_paths(data_files.resolve_data_dir(str(target)), "train"))
    original = dl.FacialKeypointsDataset(*data_files.split_paths(data_dir, "train"))
    np.testing.assert_array_equal(ds[1]["image"], original[1]["image"])
    assert download_data.download(str(target), archive=str(archive)) is None   # already there


def test_download_refuses_a_broken_archive(tmp_path, data_dir):
    archive = tmp_path / "a.zip"
    make_archive(archive, data_dir, "")
    with zipfile.ZipFile(archive) as zf, zipfile.ZipFile(tmp_path / "b.zip", "w") as out:
        for item in zf.infolist():
            if not item.filename.startswith("test/"):
                out.writestr(item, zf.read(item))
    with pytest.raises(data_files.DataError, match="listed in test_frames_keypoints.csv but missing"):
        download_data.download(str(tmp_path / "data"), archive=str(tmp_path / "b.zip"))
    assert not (tmp_path / "data").exists()
    (tmp_path / "c.zip").write_bytes(b"garbage")
    with pytest.raises(data_files.DataError, match="not a zip archive"):
        download_data.download(str(tmp_path / "data"), archive=str(tmp_path / "c.zip"))


def test_download_failure_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "download_data.py"), "--data-dir",
                          str(tmp_path / "d"), "--url", "file:///nonexistent/x.zip"],
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1].startswith("error: download failed")


@pytest.mark.parametrize("member", ["training/../../escaped.txt", "/abs/escaped.txt", "../escaped.txt"])
def test_download_refuses_a_member_that_escapes_the_folder(tmp_path, data_dir, member):
    archive = tmp_path / "slip.zip"
    make_archive(archive, data_dir, "")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(member, "outside")
    target = tmp_path / "deep" / "er" / "data"
    with pytest.raises(data_files.DataError, match="outside the data folder"):
        download_data.download(str(target), archive=str(archive))
    assert not target.exists()
    assert not [p for p in tmp_path.rglob("escaped.txt")]
