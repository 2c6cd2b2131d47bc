"""Video and camera streams: frames are decoded ahead and encoded behind in threads, so decoding,
the network and writing overlap (OpenCV releases the GIL while it decodes and encodes).

``process(rgb, time)`` gives a frame's faces (a tracking.FaceTracker, or per-frame detection);
``draw(rgb, faces)`` the annotated frame; ``record(name, rgb, faces)`` its JSON record.
"""
import os
import queue
import sys
import threading
import time as clock

import cv2

from atomic import write_atomic
from data_files import DataError

QUEUE_FRAMES = 8        # frames read ahead / waiting to be written: enough to ride out a slow frame
_DONE = object()


def _pump(source, sink, failures):
    """Run ``source`` into ``sink``, recording an exception instead of losing it."""
    try:
        source(sink)
    except BaseException as e:      # re-raised in the main thread
        failures.append(e)
    finally:
        sink(_DONE)


def in_background(items, depth=QUEUE_FRAMES):
    """The items of an iterable, produced ``depth`` ahead by a background thread."""
    queued, failures = queue.Queue(depth), []

    def source(put):
        for item in items:
            put(item)
    thread = threading.Thread(target=_pump, args=(source, queued.put, failures), daemon=True)
    thread.start()
    while (item := queued.get()) is not _DONE:
        yield item
    thread.join()
    if failures:
        raise failures[0]


def frames_of(capture):
    """RGB frames of an opened cv2.VideoCapture until it ends."""
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class BackgroundWriter:
    """A cv2.VideoWriter fed through a queue and written by a background thread."""

    def __init__(self, path, fps, size, depth=QUEUE_FRAMES):
        self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise DataError(f"{path}: cannot write a video here")
        self.frames, self.failures = queue.Queue(depth), []

        def source(_):
            while (rgb := self.frames.get()) is not _DONE:
                self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.thread = threading.Thread(target=_pump, args=(source, lambda _: None, self.failures), daemon=True)
        self.thread.start()

    def write(self, rgb):
        if self.failures:
            raise self.failures[0]
        self.frames.put(rgb)

    def close(self):
        """Write what is queued and finish the file."""
        self.frames.put(_DONE)
        self.thread.join()
        self.writer.release()
        if self.failures:
            raise self.failures[0]


def run_video(path, out_path, process, draw, record):
    """Annotate every frame into ``out_path``; returns one record per frame and prints the
    frame rate end to end (decoding, landmarks, drawing and encoding)."""
    from tqdm import tqdm
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise DataError(f"{path}: not a readable video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    records, name = [], os.path.basename(path)

    def write(tmp):
        writer = None
        try:
            for index, rgb in enumerate(tqdm(in_background(frames_of(capture)), total=total, desc="frames", unit="frame",
                                             disable=not sys.stderr.isatty())):
                faces = process(rgb, index / fps)
                if writer is None:
                    writer = BackgroundWriter(tmp, fps, rgb.shape[1::-1])
                writer.write(draw(rgb, faces))
                records.append(record(f"{name}#{index}", rgb, faces))
        finally:
            if writer is not None:
                writer.close()
        if not records:
            raise DataError(f"{path}: no frame could be read")
    start = clock.perf_counter()
    try:
        write_atomic(out_path, write)
    finally:
        capture.release()
    seconds = clock.perf_counter() - start
    print(f"{path}: {len(records)} frames, {sum(len(r['faces']) for r in records)} faces, "
          f"{len(records) / seconds:.1f} frames/s end to end -> {out_path}", file=sys.stderr)
    return records


def no_window_reason():
    """Why OpenCV cannot open a window here, or None where it can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display"
    try:
        cv2.namedWindow("probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("probe")
        return None
    except cv2.error:       # opencv-python-headless: no GUI
        return "this OpenCV has no GUI (README: requirements-gui.txt)"


def has_display():
    """Whether OpenCV can open a window here (a desktop session, an OpenCV build with a GUI)."""
    return no_window_reason() is None


def open_camera(index):
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)    # our one line, not OpenCV's warnings
    try:
        capture = cv2.VideoCapture(index)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        raise DataError(f"camera {index}: cannot be opened")
    return capture


def run_camera(index, out_path, process, draw, max_frames=None):
    """Annotate a camera's stream: in a window with the frame rate where a display exists
    (``q`` stops), into ``out_path`` otherwise; Ctrl-C stops either cleanly, the file complete.
    Frames are read as they come (no read-ahead: a live view must not lag)."""
    capture = open_camera(index)
    reason = no_window_reason()
    window, frames, start = reason is None, 0, clock.perf_counter()
    if not window:
        print(f"camera {index}: no window ({reason}); writing the annotated stream to {out_path}, Ctrl-C stops",
              file=sys.stderr)

    def stream(tmp=None):
        nonlocal frames
        writer = None
        try:
            while max_frames is None or frames < max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                shown = draw(rgb, process(rgb, clock.perf_counter() - start))
                frames += 1
                if window:
                    bgr = cv2.cvtColor(shown, cv2.COLOR_RGB2BGR)
                    fps = frames / (clock.perf_counter() - start)
                    cv2.putText(bgr, f"{fps:.1f} fps", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 255, 255), 2)
                    cv2.imshow("facial keypoints (q quits)", bgr)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
                else:
                    if writer is None:
                        writer = BackgroundWriter(tmp, 30.0, shown.shape[1::-1])
                    writer.write(shown)
        except KeyboardInterrupt:
            pass                # stop at a frame boundary: what was written stays a complete file
        finally:
            if writer is not None:
                writer.close()
        if not window and frames == 0:
            raise DataError(f"camera {index}: no frame could be read")
    try:
        if window:
            stream()
        else:
            write_atomic(out_path, stream)
    finally:
        capture.release()
        if window:
            cv2.destroyAllWindows()
    print(f"camera {index}: {frames} frames, {frames / (clock.perf_counter() - start):.1f} frames/s"
          + ("" if window else f" -> {out_path}"), file=sys.stderr)
    return frames
