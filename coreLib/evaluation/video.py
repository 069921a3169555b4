"""Labelled videos of scored windows (videogen.py).

Each entry of a ``video_sec_<model>.json`` (written by score.py) names the first
colour frame of a window with its ground truth and prediction. Every frame gets a
band below it with ``GROUND_TRUTH: <truth>`` (yellow) and ``PREDICTION:
<prediction>`` (green when right, red when wrong) and goes straight into an MJPG
video: no temporary image files, unlike the 2019 tool's JPEG folder and
uncompressed AVI. The entries are cut into videos of at most ``max_len`` frames,
``<json name>_<k>.avi`` for k = 0, 1, ... next to the JSON; chunks of the same
name left by an earlier run with more chunks are removed.

Speed: an MJPG frame is a plain JPEG, so worker threads read, decode, compose and
JPEG-encode whole frames in parallel (OpenCV releases the GIL) and the video
writer only stores the encoded bytes (FFmpeg's raw-packet mode). The label band
is drawn once per distinct (truth, prediction) pair of a video and reused.

Frames of one video may come from sequences of different resolutions: each video
is as large as its largest frame (read from the PNG headers in a first pass, which
also proves every frame exists before anything is written) and smaller frames are
scaled to fit and letterboxed with black.
"""

import collections
import concurrent.futures
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from coreLib import storage
from coreLib.data import frames
from coreLib.errors import ActrecogError
from coreLib.progress import progress_bar


VIDEO_SUFFIX = ".avi"
FOURCC = "MJPG"
# Frame modalities a video can show (all); the JSON always names the colour frame.
VIDEO_MODALITIES = tuple(frames.MODALITIES)
JSON_MODALITY = "color"
TRUTH_COLOUR = (0, 255, 255)       # BGR yellow
RIGHT_COLOUR = (0, 255, 0)         # BGR green
WRONG_COLOUR = (0, 0, 255)         # BGR red
BAND_BACKGROUND = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX
TRUTH_PREFIX = "GROUND_TRUTH: "
PREDICTION_PREFIX = "PREDICTION: "
DEPTH_COLOUR_MAP = cv2.COLORMAP_TURBO
# JPEG quality of each frame: 85 keeps the 320x240 benchmark frames at ~24 KiB
# (about 6x smaller than the 2019 tool's AVI) with crisp label text; 90 would
# cost a third more bytes for ~0.3 dB.
JPEG_QUALITY = 85
# Frame reading, decoding and JPEG encoding run in these threads; the main thread
# only hands encoded frames to the writer.
COMPOSE_WORKERS = max(2, min(8, os.cpu_count() or 2))
COMPOSE_LOOKAHEAD = 4 * COMPOSE_WORKERS
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class VideoConfig:
    """What videogen.py was asked to do.

    Attributes:
        json_path: a ``video_sec_<model>.json`` (local path or URI).
        max_len: frames per video at most (>= 1).
        fps: frames per second of the videos.
        modality: ``color``, or ``depth``/``confi`` rendered with a colour map.
        progress: report progress (a bar on a terminal, else plain lines).
    """
    json_path: str
    max_len: int
    fps: float = 10.0
    modality: str = "color"
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.max_len, bool) or not isinstance(self.max_len, int) \
                or self.max_len < 1:
            raise ValueError(f"max_len must be an integer >= 1, got {self.max_len!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps!r}")
        if self.modality not in VIDEO_MODALITIES:
            raise ValueError(f"modality must be one of {VIDEO_MODALITIES}, "
                             f"got {self.modality!r}")


@dataclass(frozen=True)
class LabelledFrame:
    """One entry of a video_sec JSON: a frame and its two labels."""
    path: str
    truth: str
    prediction: str

    @property
    def correct(self) -> bool:
        return self.truth == self.prediction


@dataclass(frozen=True)
class BandLayout:
    """Text placement of the label band under a frame of a given width."""
    font_scale: float
    thickness: int
    line_height: int
    margin: int

    @property
    def height(self) -> int:
        return 2 * self.line_height + self.margin


def load_video_sec(json_path: str) -> List[LabelledFrame]:
    """Reads a video_sec JSON.

    Raises:
        ActrecogError: missing file, not a non-empty list, or an entry without
            path/truth/prediction (naming the entry).
    """
    entries = storage.read_json(json_path, "video_sec JSON")
    if not isinstance(entries, list) or not entries:
        raise ActrecogError(f"{json_path}: expected a non-empty JSON list of "
                            f"{{path, truth, prediction}} entries")
    labelled = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ActrecogError(f"{json_path}: entry {number}: expected an object")
        missing = [key for key in ("path", "truth", "prediction") if key not in entry]
        if missing:
            raise ActrecogError(f"{json_path}: entry {number}: missing "
                                f"{', '.join(missing)} (not a score.py video_sec file?)")
        labelled.append(LabelledFrame(str(entry["path"]), str(entry["truth"]),
                                      str(entry["prediction"])))
    return labelled


def modality_frame_path(path: str, modality: str) -> str:
    """The same frame of another modality: ``.../color_<i>.png`` -> ``depth_<i>.png``."""
    if modality == JSON_MODALITY:
        return path
    folder, name = os.path.split(path) if not storage.is_remote(path) else path.rsplit("/", 1)
    prefix = f"{JSON_MODALITY}_"
    if not name.startswith(prefix):
        raise ActrecogError(f"{path}: not a {prefix}<i>.png frame, cannot find its "
                            f"{modality} frame")
    return storage.join(folder, modality + "_" + name[len(prefix):])


def png_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of a PNG from its header (24 bytes read).

    Raises:
        ActrecogError: the file is missing or not a PNG.
    """
    header = frames.read_frame_bytes(path, 24)
    if len(header) < 24 or not header.startswith(_PNG_SIGNATURE) or header[12:16] != b"IHDR":
        raise ActrecogError(f"{path}: not a PNG image")
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def colour_map_depth(frame: np.ndarray) -> np.ndarray:
    """Renders a 16-bit single-channel frame with a colour map.

    The valid (non-zero) values of the frame are stretched over the map; zero (no
    reading) stays black.

    Args:
        frame: ``(H, W, 1)`` or ``(H, W)`` uint16.

    Returns:
        ``(H, W, 3)`` uint8 BGR.
    """
    values = frame.reshape(frame.shape[0], frame.shape[1]).astype(np.float32)
    valid = values > 0
    scaled = np.zeros(values.shape, np.uint8)
    if valid.any():
        low, high = float(values[valid].min()), float(values[valid].max())
        span = max(high - low, 1.0)
        scaled = np.clip((values - low) * (255.0 / span), 0, 255).astype(np.uint8)
    coloured = cv2.applyColorMap(scaled, DEPTH_COLOUR_MAP)
    coloured[~valid] = 0
    return coloured


def read_display_frame(path: str, modality: str) -> np.ndarray:
    """Reads one frame for display.

    Args:
        path: the frame file (already of ``modality``).
        modality: ``color``, ``depth`` or ``confi``.

    Returns:
        ``(H, W, 3)`` uint8 BGR (OpenCV's order, what the encoder takes).
    """
    data = frames.read_frame_bytes(path)
    if modality == JSON_MODALITY:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ActrecogError(f"{path}: not a readable image")
        return image
    return colour_map_depth(frames.decode_frame(data, modality, path))


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scales ``image`` to fit ``(width, height)`` keeping its aspect ratio and pads
    the rest with black, centred.

    Args:
        image: ``(h, w, 3)`` uint8.

    Returns:
        ``(height, width, 3)`` uint8.
    """
    image_height, image_width = image.shape[:2]
    if (image_width, image_height) == (width, height):
        return image
    scale = min(width / image_width, height / image_height)
    new_width = max(1, min(width, round(image_width * scale)))
    new_height = max(1, min(height, round(image_height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - new_height) // 2, (width - new_width) // 2
    canvas[top:top + new_height, left:left + new_width] = resized
    return canvas


def band_layout(width: int, longest_text: str) -> BandLayout:
    """Font size that fits the longest label line into ``width`` pixels."""
    margin = max(4, width // 64)
    (text_width, text_height), baseline = cv2.getTextSize(longest_text, FONT, 1.0, 2)
    font_scale = min(1.0, (width - 2 * margin) / max(text_width, 1))
    font_scale = max(font_scale, 0.3)
    # Thin strokes lose their colour to MJPG chroma subsampling below about 2 px.
    thickness = 2
    (_, text_height), baseline = cv2.getTextSize(longest_text, FONT, font_scale, thickness)
    return BandLayout(font_scale, thickness, text_height + baseline + margin, margin)


def label_band(width: int, height: int, entry: LabelledFrame,
               layout: BandLayout) -> np.ndarray:
    """The label band alone: black with the two text lines.

    Args:
        width: frame width W.
        height: band height, at least ``layout.height`` (extra rows stay black).
        entry: the labels.
        layout: from :func:`band_layout` for width W.

    Returns:
        ``(height, W, 3)`` uint8 BGR.
    """
    band = np.empty((height, width, 3), np.uint8)
    band[:] = BAND_BACKGROUND
    lines = ((TRUTH_PREFIX + entry.truth, TRUTH_COLOUR),
             (PREDICTION_PREFIX + entry.prediction,
              RIGHT_COLOUR if entry.correct else WRONG_COLOUR))
    for line, (text, colour) in enumerate(lines, start=1):
        baseline_y = line * layout.line_height - layout.margin // 2
        cv2.putText(band, text, (layout.margin, baseline_y), FONT, layout.font_scale,
                    colour, layout.thickness, cv2.LINE_AA)
    return band


def _chunk_stem(json_path: str) -> str:
    return json_path[:-len(".json")] if json_path.endswith(".json") else json_path


def chunk_path(json_path: str, index: int) -> str:
    """``<json path without .json>_<index>.avi``."""
    return f"{_chunk_stem(json_path)}_{index}{VIDEO_SUFFIX}"


def remove_stale_chunks(json_path: str, count: int) -> List[str]:
    """Removes ``<json name>_<k>.avi`` for k >= ``count`` next to the JSON.

    A rerun with a larger ``max_len`` writes fewer chunks; the extra ones of the
    earlier run would otherwise sit beside the new ones as if they belonged to
    them. Only names :func:`chunk_path` would write are touched (``_<k>`` without
    leading zeros, exactly ``.avi``); another JSON's chunks such as
    ``<json name>_2_0.avi`` do not match.

    Returns:
        The files removed, by index.
    """
    stem_path = _chunk_stem(json_path)
    if storage.is_remote(stem_path):
        folder, stem = stem_path.rsplit("/", 1)
    else:
        folder, stem = os.path.split(stem_path)
        folder = folder or "."
    pattern = re.compile(rf"^{re.escape(stem)}_(0|[1-9][0-9]*){re.escape(VIDEO_SUFFIX)}$")
    stale: Dict[int, str] = {}
    for name in storage.listdir(folder):
        match = pattern.match(name)
        if match and int(match.group(1)) >= count:
            stale[int(match.group(1))] = storage.join(folder, name)
    removed = []
    for index in sorted(stale):
        storage.remove(stale[index])
        removed.append(stale[index])
    return removed


def _even(value: int) -> int:
    # MJPG (4:2:0 chroma) silently drops an odd last row/column.
    return value + (value % 2)


def chunk_size(sizes: Sequence[Tuple[int, int]]) -> Tuple[int, int]:
    """Frame size of one video: the largest width and height, made even."""
    return (_even(max(width for width, _ in sizes)),
            _even(max(height for _, height in sizes)))


def _compose_and_encode(path: str, band: np.ndarray, size: Tuple[int, int],
                        modality: str) -> np.ndarray:
    """One finished MJPG frame: decoded, letterboxed, band below, JPEG-encoded.

    Returns:
        ``(1, nbytes)`` uint8, the layout the raw-packet writer takes.
    """
    width, height = size
    frame = letterbox(read_display_frame(path, modality), width, height)
    out = np.empty((height + band.shape[0], width, 3), np.uint8)
    out[:height] = frame
    out[height:] = band
    ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ActrecogError(f"{path}: JPEG encoding failed")
    return encoded.reshape(1, -1)


def open_mjpg_writer(local_path: str, fps: float, size: Tuple[int, int],
                     name: str) -> "cv2.VideoWriter":
    """An MJPG video writer in raw-packet mode: each ``write`` takes one JPEG
    (``(1, nbytes)`` uint8, as :func:`cv2.imencode` gives it) and FFmpeg stores it
    as one frame as it is.

    Args:
        local_path: the file to write (ends in ``.avi``: OpenCV picks the
            container from it).
        fps: frames per second.
        size: ``(width, height)`` of every frame.
        name: the file to name in the error.

    Raises:
        ActrecogError: the writer cannot be opened.
    """
    writer = cv2.VideoWriter(local_path, cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*FOURCC),
                             float(fps), size, [cv2.VIDEOWRITER_PROP_RAW_VIDEO, 1])
    if not writer.isOpened():
        writer.release()
        raise ActrecogError(f"{name}: cannot open an {FOURCC} video writer")
    return writer


def _write_chunk(final_path: str, entries: Sequence[LabelledFrame], paths: Sequence[str],
                 size: Tuple[int, int], layout: BandLayout, config: VideoConfig,
                 bar) -> None:
    """Encodes one video under a temporary name, then renames it into place."""
    width, height = size
    full_height = _even(height + layout.height)   # the band takes the odd row
    bands = {}
    for entry in entries:
        key = (entry.truth, entry.prediction)
        if key not in bands:
            bands[key] = label_band(width, full_height - height, entry, layout)
    local_dir = tempfile.mkdtemp() if storage.is_remote(final_path) else None
    if local_dir:
        local_path = os.path.join(local_dir, os.path.basename(final_path))
    else:
        # OpenCV picks the container from the extension, so the name ends in .avi.
        local_path = storage.temporary_name(final_path) + VIDEO_SUFFIX
    writer = open_mjpg_writer(local_path, config.fps, (width, full_height), final_path)
    try:
        # The bounded queue keeps memory at a few encoded frames.
        with concurrent.futures.ThreadPoolExecutor(COMPOSE_WORKERS) as pool:
            queue: collections.deque = collections.deque()
            try:
                for entry, path in zip(entries, paths):
                    queue.append(pool.submit(
                        _compose_and_encode, path, bands[(entry.truth, entry.prediction)],
                        size, config.modality))
                    if len(queue) > COMPOSE_LOOKAHEAD:
                        writer.write(queue.popleft().result())
                        bar.update(1)
                while queue:
                    writer.write(queue.popleft().result())
                    bar.update(1)
            finally:
                for future in queue:
                    future.cancel()
        writer.release()
        if local_dir:
            with storage.atomic_path(final_path) as temp:
                storage.copy_file(local_path, temp)
        else:
            os.replace(local_path, final_path)
    finally:
        writer.release()
        if local_dir:
            shutil.rmtree(local_dir, ignore_errors=True)
        elif os.path.exists(local_path):
            os.remove(local_path)


def write_videos(config: VideoConfig) -> List[str]:
    """Renders the labelled videos of a video_sec JSON.

    Args:
        config: see :class:`VideoConfig`.

    Returns:
        The video files written, in order.

    Chunks ``<json name>_<k>.avi`` with k beyond the ones written (left by an
    earlier run with a smaller ``max_len``) are removed afterwards.

    Raises:
        ActrecogError: bad JSON, or a frame missing / not a PNG (found before
            any video is written).
    """
    entries = load_video_sec(config.json_path)
    paths = [modality_frame_path(entry.path, config.modality) for entry in entries]
    sizes = [png_size(path) for path in paths]   # every frame exists, before writing
    # One font size for every video: the longest label line must fit the narrowest.
    longest_text = max((text for entry in entries for text in
                        (TRUTH_PREFIX + entry.truth, PREDICTION_PREFIX + entry.prediction)),
                       key=len)
    written = []
    with progress_bar(len(entries), desc="videos", unit="frame",
                      enabled=config.progress) as bar:
        for index, begin in enumerate(range(0, len(entries), config.max_len)):
            end = begin + config.max_len
            size = chunk_size(sizes[begin:end])
            layout = band_layout(size[0], longest_text)
            path = chunk_path(config.json_path, index)
            _write_chunk(path, entries[begin:end], paths[begin:end], size, layout, config,
                         bar)
            written.append(path)
    remove_stale_chunks(config.json_path, len(written))
    return written

