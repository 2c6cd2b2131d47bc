"""Where the tests find their data, and `make test`'s first step.

    python tests/find_data.py             # print where the data is; exit 1 if absent
    python tests/find_data.py --download  # absent: run the project's download step first

Udacity's data: $FKP_DATA_DIR, else ./data (where `make data` puts it), else
../shared/data/facial_keypoints. 300-W cannot be downloaded (its licence): $FKP_300W_DIR,
else ../shared/data/300w; without it the tests that score real 300-W photographs are
deselected and reported as such, while the 300-W readers are tested on fixtures the tests make.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import data_300w  # noqa: E402
import data_files  # noqa: E402

SHARED_DATA = os.path.join(ROOT, "..", "shared", "data", "facial_keypoints")


def candidates():
    env = os.environ.get(data_files.DATA_DIR_ENV)
    return [env] if env else [data_files.DEFAULT_DATA_DIR, SHARED_DATA]


def find_udacity_data():
    """The first complete Udacity data folder, or None."""
    for path in candidates():
        try:
            return data_files.resolve_data_dir(path)
        except data_files.DataError:
            continue
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = find_udacity_data()
    if path is None and "--download" in argv:
        import download_data
        target = candidates()[0]
        print(f"no Udacity data found; downloading it into {target}", flush=True)
        try:
            download_data.download(target)
        except data_files.DataError as e:
            sys.exit(f"error: the tests need Udacity's data, not found in {' or '.join(candidates())}, "
                     f"and the download failed ({e})")
        path = find_udacity_data()
    if path is None:
        sys.exit(f"error: the tests need Udacity's data, not found in {' or '.join(candidates())} "
                 f"(run `make data` or set {data_files.DATA_DIR_ENV})")
    print(f"Udacity data: {os.path.abspath(path)}")
    wild = data_300w.find_300w_dir()
    print(f"300-W photographs: {os.path.abspath(wild)}" if wild else
          f"300-W photographs: not found (set {data_300w.WILD_DIR_ENV}); the tests that need them are deselected")


if __name__ == "__main__":
    main()
