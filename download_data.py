"""Fetch Udacity's facial keypoints data (3462 train / 770 test faces) into ./data.

    python download_data.py                       # from Udacity, GitHub as a fallback
    python download_data.py --archive local.zip   # from an archive already on disk

The archive is checked (zip CRCs, both CSVs parse with 68 keypoints per row, every
listed image is present and decodes) before anything is unpacked, and the data
directory appears only when complete (unpacked beside it, then renamed).
"""
import argparse
import os
import shutil
import sys
import tempfile
import urllib.request
import zipfile

import data_files

URLS = (
    "https://s3.amazonaws.com/video.udacity-data.com/topher/2018/May/"
    "5aea1b91_train-test-data/train-test-data.zip",
    "https://github.com/udacity/P1_Facial_Keypoints/archive/refs/heads/master.zip",
)
PUBLISHED_ROWS = {"train": 3462, "test": 770}
LAYOUT = (data_files.TRAIN_CSV, data_files.TEST_CSV, data_files.TRAIN_DIR, data_files.TEST_DIR)
CHUNK = 1 << 20


def fetch(url, dest, timeout=60):
    """Download ``url`` to ``dest`` with a progress bar."""
    from tqdm import tqdm
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url)[:40]) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def data_root(names):
    """The folder inside the archive that holds training_frames_keypoints.csv."""
    for name in names:
        if name.endswith(data_files.TRAIN_CSV) and "__MACOSX" not in name:
            return name[: -len(data_files.TRAIN_CSV)]
    raise data_files.DataError(f"archive holds no {data_files.TRAIN_CSV}")


def verify_archive(path):
    """Check the archive; returns (root prefix, {split: rows})."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise data_files.DataError(f"{path}: not a zip archive ({e})") from None
    with archive:
        bad = archive.testzip()
        if bad:
            raise data_files.DataError(f"{path}: corrupt member {bad}")
        names = set(archive.namelist())
        for name in names:      # "zip slip": a member must not land outside the target folder
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
                raise data_files.DataError(f"{path}: member {name!r} would be written outside the data folder")
        root, rows = data_root(names), {}
        for split in ("train", "test"):
            csv_name, image_dir = (os.path.relpath(p, "/") for p in data_files.split_paths("/", split))
            with tempfile.TemporaryDirectory() as tmp:
                csv_path = os.path.join(tmp, csv_name)
                with open(csv_path, "wb") as f:
                    f.write(archive.read(root + csv_name))
                files, _ = data_files.read_keypoints_csv(csv_path)
            for name in files:
                member = f"{root}{image_dir}/{name}"
                if member not in names:
                    raise data_files.DataError(f"{path}: {member} is listed in {csv_name} but missing")
                data_files.decode_image(archive.read(member), member)
            rows[split] = len(files)
    return root, rows


def unpack(path, root, data_dir):
    """Extract the data folders and CSVs under ``root`` into ``data_dir`` atomically."""
    parent = os.path.dirname(os.path.abspath(data_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".data-", dir=parent)
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                rel = member[len(root):]
                if not member.startswith(root) or not rel or rel.split("/")[0] not in LAYOUT:
                    continue
                target = os.path.join(staging, rel)
                if not os.path.abspath(target).startswith(os.path.abspath(staging) + os.sep):
                    raise data_files.DataError(f"{path}: member {member!r} would be written outside the data folder")
                if member.endswith("/"):
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with archive.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        # keep anything else the user has in data_dir (e.g. its README)
        if os.path.isdir(data_dir):
            for entry in os.listdir(data_dir):
                if entry not in LAYOUT:
                    shutil.move(os.path.join(data_dir, entry), os.path.join(staging, entry))
            shutil.rmtree(data_dir)
        os.replace(staging, data_dir)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)


def download(data_dir, urls=URLS, archive=None, force=False):
    """Make ``data_dir`` hold the dataset; returns {split: rows}."""
    if not force and all(os.path.exists(os.path.join(data_dir, p)) for p in LAYOUT):
        print(f"{data_dir} already holds the data (use --force to fetch again)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        if archive is None:
            archive, errors = os.path.join(tmp, "train-test-data.zip"), []
            for url in urls:
                try:
                    fetch(url, archive)
                    break
                except OSError as e:
                    errors.append(f"{url}: {getattr(e, 'reason', e)}")
            else:
                raise data_files.DataError("download failed: " + "; ".join(errors))
        elif not os.path.isfile(archive):
            raise data_files.DataError(f"{archive}: archive not found")
        root, rows = verify_archive(archive)
        unpack(archive, root, data_dir)
    for split, n in rows.items():
        note = "" if n == PUBLISHED_ROWS[split] else f" (published: {PUBLISHED_ROWS[split]})"
        print(f"{split}: {n} images{note}")
    print(f"data ready in {data_dir}")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get(data_files.DATA_DIR_ENV) or data_files.DEFAULT_DATA_DIR,
                   help="where the data goes (default: $FKP_DATA_DIR, else ./data: %(default)s)")
    p.add_argument("--url", action="append", help="download from here instead (repeatable)")
    p.add_argument("--archive", help="use this local zip instead of downloading")
    p.add_argument("--force", action="store_true", help="replace data already present")
    args = p.parse_args(argv)
    try:
        download(args.data_dir, tuple(args.url) if args.url else URLS, args.archive, args.force)
    except data_files.DataError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
