"""Recordings to run detection on, and their frames, each decoded once.

Sources (SOURCE of detect.py):
    - one BII sequence folder (``<modality>_<i>.png`` frames);
    - a split folder: every sequence folder below it (``SRC/Test`` ->
      ``<subject>/<action>/``, ``SRC/TestDetection`` -> ``<name>/``,
      ``SRC/Train/<subject>`` -> ``<action>/``);
    - a video file, read with OpenCV's ``VideoCapture`` (colour frames; a camera
      index would take the same path through :class:`VideoFrames`).

PNG frames are decoded by the threads of ``inference.frame_reader``
(:func:`coreLib.inference.frame_reader.iterate_batches` over one-frame windows), video frames
by one sequential ``VideoCapture`` pass.

Ground truth: a sequence folder ``X`` is scored when ``X.xml`` lies beside it
(read by :func:`coreLib.data.labels.truth_from_labels`). Sequences without a
label file are detected, not scored.
"""

import collections
import concurrent.futures
import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional

import numpy as np

from coreLib import storage
from coreLib.data import frames, labels, manifest as manifest_lib, window_lists
from coreLib.errors import ActrecogError
from coreLib.inference import frame_reader
from coreLib.inference.model_spec import VIDEO_MODALITY

LABEL_SUFFIX = ".xml"
# Deep enough for SRC (SRC/Test/<subject>/<action>/); a bound keeps a wrong
# SOURCE (a home folder) from being walked whole.
MAX_SEARCH_DEPTH = 3


@dataclass(frozen=True)
class SequenceSource:
    """One recording to run detection on.

    Attributes:
        name: output name (path below SOURCE joined by ``_``, or the file stem).
        path: the sequence folder or the video file.
        is_video: read through ``VideoCapture``.
        num_frames: frames (PNG: counted; video: OpenCV's estimate, may be 0).
        truth: ``(N,)`` int64 class per frame, or None without a label file.
        label_path: the label file, or None.
    """
    name: str
    path: str
    is_video: bool
    num_frames: int
    truth: Optional[np.ndarray] = field(default=None, compare=False)
    label_path: Optional[str] = None



def _has_frames(folder: str, modality: str) -> bool:
    pattern = re.compile(rf"^{re.escape(modality)}_\d+\.png$")
    return any(pattern.match(name) for name in storage.listdir(folder))


def _sequence_folders(root: str, modality: str) -> List[str]:
    """Folders holding frames at most :data:`MAX_SEARCH_DEPTH` levels below root."""
    found, level = [], [root]
    for _ in range(MAX_SEARCH_DEPTH + 1):
        below = []
        for folder in level:
            if _has_frames(folder, modality):
                found.append(folder)
                continue
            below += [storage.join(folder, name) for name in storage.listdir(folder)
                      if storage.isdir(storage.join(folder, name))]
        level = below
    return sorted(found)


def open_video(target) -> "Any":
    """An opened ``cv2.VideoCapture`` of a file name or a camera index.

    Raises:
        ActrecogError: it cannot be opened.
    """
    # FFmpeg's own complaints about a damaged file would break the one-line
    # contract on stderr; what matters is said by the caller.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        capture.release()
        raise ActrecogError(f"{target}: cannot be opened as a video")
    return capture


def discover_sources(source: str, manifest: manifest_lib.Manifest) -> List[SequenceSource]:
    """Every recording under SOURCE, with its ground truth where a label file is.

    Raises:
        ActrecogError: SOURCE missing, a folder without any sequence, a video for a
            model of another modality or one that cannot be opened, a gap in a
            sequence's frames, a sequence shorter than the window, or a bad label
            file (see :func:`coreLib.data.labels.truth_from_labels`).
    """
    if not storage.exists(source):
        raise ActrecogError(f"{source}: SOURCE not found")
    if not storage.isdir(source):
        if manifest.modality != VIDEO_MODALITY:
            raise ActrecogError(f"{source}: a video gives colour frames, the model takes "
                                f"{manifest.modality} windows")
        if manifest.frames != "full":
            raise ActrecogError(f"{source}: the model takes hand-centred windows, which "
                                f"need depth frames to find the hand; a video has none")
        if storage.is_remote(source):
            raise ActrecogError(f"{source}: video files are read from local paths only")
        capture = open_video(source)
        import cv2
        estimate = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        capture.release()
        stem = os.path.splitext(os.path.basename(source))[0]
        return [SequenceSource(stem, source, True, estimate)]
    root = source.rstrip("/") or source
    folders = _sequence_folders(root, manifest.modality)
    if not folders:
        raise ActrecogError(f"{source}: no sequence folders with "
                            f"{manifest.modality}_<i>.png frames (and not a video file)")
    sources = []
    for folder in folders:
        if folder == root:
            name = os.path.basename(os.path.normpath(root))
        else:
            name = "_".join(folder[len(root):].strip("/").split("/"))
        num_frames = frames.count_frames(folder, manifest.modality)
        if num_frames < manifest.seq_len:
            raise ActrecogError(f"{folder}: {num_frames} frames, fewer than the model's "
                                f"window of {manifest.seq_len}")
        label_path = folder.rstrip("/") + LABEL_SUFFIX
        truth = None
        if storage.exists(label_path):
            truth = labels.truth_from_labels(label_path, folder, num_frames, manifest.classes)
        else:
            label_path = None
        sources.append(SequenceSource(name, folder, False, num_frames, truth, label_path))
    return sources


def png_frame_chunks(sequence: SequenceSource, manifest: manifest_lib.Manifest,
                     chunk_frames: int, workers: int,
                     boxes: Optional[dict] = None) -> Iterator[np.ndarray]:
    """The frames of a PNG sequence in order, each decoded once.

    ``inference.frame_reader``'s threaded reader, over windows of one frame: ``workers`` threads
    decode and resize a chunk ahead of the caller.

    Hand-centred frames (the manifest's ``frames``) come through the same tracker
    as main.py's and score.py's; ``boxes`` (a dict) then receives each frame's
    crop box by ``(path, index)``.

    Yields:
        ``(T, D, D, C)`` arrays of the manifest's dtype, ``T <= chunk_frames``.

    Raises:
        ActrecogError: a frame that cannot be read or decoded.
    """
    single = dataclasses.replace(manifest, seq_len=1)
    windows = [window_lists.ListedWindow(sequence.path, index, index, 0)
               for index in range(sequence.num_frames)]
    for _, pixels, _, _ in frame_reader.iterate_batches(windows, single, chunk_frames, workers,
                                                        boxes):
        yield pixels[:, 0]


class VideoFrames:
    """Frames of a ``VideoCapture`` (file or camera), RGB resized to the model's side.

    Args:
        target: a video file name or a camera index.
        image_dim: side D of the model's frames.

    Attributes:
        decoded_frames: frames read so far.
    """

    def __init__(self, target, image_dim: int):
        self.target, self.image_dim, self.decoded_frames = target, image_dim, 0

    def chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """Yields ``(T, D, D, 3)`` uint8 RGB chunks until the capture ends."""
        import cv2
        capture = open_video(self.target)
        try:
            while True:
                chunk = []
                while len(chunk) < chunk_frames:
                    ok, image = capture.read()
                    if not ok:
                        break
                    self.decoded_frames += 1
                    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                    chunk.append(frames.resize_frame(rgb, self.image_dim))
                if chunk:
                    yield np.stack(chunk)
                if len(chunk) < chunk_frames:
                    return
        finally:
            capture.release()


def prefetch(iterator: Iterator, depth: int = 1) -> Iterator:
    """Runs ``iterator`` one step ahead in a thread (decoding beside the model)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sentinel = object()
        queue = collections.deque(pool.submit(next, iterator, sentinel)
                                  for _ in range(depth))
        while queue:
            item = queue.popleft().result()
            if item is sentinel:
                return
            queue.append(pool.submit(next, iterator, sentinel))
            yield item
