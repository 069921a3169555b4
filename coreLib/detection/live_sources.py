"""Live frame sources: raw frames on a pipe, and cameras through OpenCV.

SOURCE of a live run (detect.py):
    ``-``            raw frames on standard input, laid out by ``--raw-format
                     FMT:WxH``: ``gray16le`` (depth in millimetres, as the BII
                     depth/confi PNGs hold it), ``gray8``, ``bgr24`` or ``rgb24``;
                     W*H*bytes per pixel each, no header, back to back (what
                     ``ffmpeg -f rawvideo -pix_fmt gray16le -`` writes).
    ``cam:N``        the OpenCV camera with index N (colour);
    ``/dev/videoN``  a V4L2 camera by its device file (colour).

Frames come out at their own size, ``(H, W, C)``: uint16 (gray16le) or uint8
(RGB); :class:`coreLib.detection.live.LiveDetector` resizes them with
:func:`coreLib.data.frames.resize_frame` (what main.py stores), so live, recorded
and training pixels agree.
"""

import collections
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np

from coreLib.errors import ActrecogError

STDIN_SOURCE = "-"
# What a stream fed through the Python API (LiveDetector.push) is called.
API_SOURCE = "live"
CAMERA_PREFIX = "cam:"
# Pixel formats: bytes per pixel, channels, dtype, modalities they can feed.
RAW_PIXEL_FORMATS = {
    "gray16le": (2, 1, "<u2", ("depth", "confi")),
    "gray8": (1, 1, "u1", ()),
    "bgr24": (3, 3, "u1", ("color",)),
    "rgb24": (3, 3, "u1", ("color",)),
}
_RAW_FORMAT = re.compile(r"^([a-z0-9]+):([1-9][0-9]*)x([1-9][0-9]*)$")
_VIDEO_DEVICE = re.compile(r"^/dev/video[0-9]+$")
# Frames a realtime source holds while the model is busy; older ones are dropped.
REALTIME_QUEUE_FRAMES = 2


def is_live_source(source: str) -> bool:
    """Whether SOURCE names a live stream (``-``, ``cam:N``, ``/dev/videoN``)."""
    return source == STDIN_SOURCE or is_camera(source)


def is_camera(source: str) -> bool:
    """Whether SOURCE names a camera: ``cam:N`` or ``/dev/videoN``."""
    return source.startswith(CAMERA_PREFIX) or bool(_VIDEO_DEVICE.match(source))


def live_name(source: str) -> str:
    """Output name of a live source: ``stdin``, ``cam0``, ``video0``."""
    if source == STDIN_SOURCE:
        return "stdin"
    if source.startswith(CAMERA_PREFIX):
        return "cam" + source[len(CAMERA_PREFIX):]
    return source.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RawFormat:
    """``--raw-format FMT:WxH``.

    Attributes:
        pixel_format: a key of :data:`RAW_PIXEL_FORMATS`.
        width, height: frame size in pixels.
    """
    pixel_format: str
    width: int
    height: int

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * RAW_PIXEL_FORMATS[self.pixel_format][0]

    def to_frame(self, data) -> np.ndarray:
        """Raw bytes of one frame -> ``(H, W, C)``: uint16 or uint8 RGB."""
        _, channels, dtype, _ = RAW_PIXEL_FORMATS[self.pixel_format]
        image = np.frombuffer(data, dtype).reshape(self.height, self.width, channels)
        if self.pixel_format == "bgr24":
            image = np.ascontiguousarray(image[:, :, ::-1])
        return image.astype(dtype[-2:], copy=False)


def parse_raw_format(text: str, modality: str) -> RawFormat:
    """``FMT:WxH`` for a model of ``modality``.

    Raises:
        ActrecogError: not of that form, an unknown FMT, or one that does not
            feed the model's frames (gray16le: depth/confi; bgr24/rgb24: color).
    """
    match = _RAW_FORMAT.match(text or "")
    if not match or match.group(1) not in RAW_PIXEL_FORMATS:
        raise ActrecogError(f"--raw-format {text}: expected FMT:WxH with FMT one of "
                            f"{', '.join(RAW_PIXEL_FORMATS)} (e.g. gray16le:320x240)")
    pixel_format = match.group(1)
    if modality not in RAW_PIXEL_FORMATS[pixel_format][3]:
        fitting = [name for name, spec in RAW_PIXEL_FORMATS.items() if modality in spec[3]]
        raise ActrecogError(f"--raw-format {text}: {pixel_format} frames do not fit the "
                            f"model's {modality} frames (use {' or '.join(fitting)})")
    return RawFormat(pixel_format, int(match.group(2)), int(match.group(3)))


class RawFrames:
    """Raw frames from a binary stream, ``(H, W, C)`` each (uint16, or uint8 RGB).

    Args:
        stream: a binary file object (``sys.stdin.buffer``).
        raw_format: its layout.

    Attributes:
        partial_bytes: bytes of an incomplete last frame (0 when the stream
            ended on a frame boundary).
    """

    def __init__(self, stream, raw_format: RawFormat):
        self.stream, self.raw_format = stream, raw_format
        self.partial_bytes = 0

    def _read_exactly(self, buffer: memoryview) -> int:
        filled = 0
        while filled < len(buffer):
            count = self.stream.readinto(buffer[filled:])
            if not count:
                break
            filled += count
        return filled

    def __iter__(self) -> Iterator[np.ndarray]:
        """Frames until the stream ends (a partial last frame is counted, not given)."""
        size = self.raw_format.frame_bytes
        while True:
            buffer = bytearray(size)
            filled = self._read_exactly(memoryview(buffer))
            if filled < size:
                self.partial_bytes = filled
                return
            yield self.raw_format.to_frame(buffer)


def open_camera(source: str):
    """An opened ``cv2.VideoCapture`` of ``cam:N`` or ``/dev/videoN``.

    Raises:
        ActrecogError: a bad index, or a camera that cannot be opened.
    """
    import cv2
    target = source
    if source.startswith(CAMERA_PREFIX):
        index = source[len(CAMERA_PREFIX):]
        if not index.isdigit():
            raise ActrecogError(f"{source}: expected cam:N with N a camera index")
        target = int(index)
    # OpenCV logs a failed open as warnings on stderr; the error line says it.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        capture = cv2.VideoCapture(target)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        capture.release()
        raise ActrecogError(f"{source}: the camera cannot be opened")
    return capture


class CameraFrames:
    """Colour frames of an opened camera: ``((H, W, 3) uint8 RGB, capture time in
    seconds)`` pairs until it stops."""

    def __init__(self, capture):
        self.capture = capture

    def __iter__(self) -> Iterator[Tuple[np.ndarray, float]]:
        import cv2
        try:
            while True:
                ok, image = self.capture.read()
                if not ok:
                    return
                stamp = time.monotonic()
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB), stamp
        finally:
            self.capture.release()


class FrameFeed:
    """Frames read in a thread, handed to the caller in order.

    With ``realtime`` the thread keeps reading while the caller is busy, holding
    at most :data:`REALTIME_QUEUE_FRAMES`; when another arrives the oldest
    waiting frame is dropped and counted. Without it the thread waits for the
    caller (a pipe's back-pressure reaches the producer).

    Args:
        frames_iterable: yields ``(frame, timestamp or None)``.
        realtime: drop the oldest frames rather than wait.
    """

    _END = object()

    def __init__(self, frames_iterable, realtime: bool):
        self.realtime = realtime
        self.capacity = REALTIME_QUEUE_FRAMES if realtime else 1
        self.queue = collections.deque()
        self.condition = threading.Condition()
        self.dropped = 0
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._read, args=(frames_iterable,),
                                       daemon=True, name="frame-feed")
        self.thread.start()

    def _put(self, item) -> None:
        with self.condition:
            if item is not self._END and len(self.queue) >= self.capacity:
                if self.realtime:
                    self.queue.popleft()
                    self.dropped += 1
                else:
                    while len(self.queue) >= self.capacity:
                        self.condition.wait()
            self.queue.append(item)
            self.condition.notify_all()

    def _read(self, frames_iterable) -> None:
        try:
            for frame, stamp in frames_iterable:
                self._put((frame, stamp, time.perf_counter()))
        except BaseException as error:   # handed to the caller's thread
            self.error = error
        self._put(self._END)

    def get(self, timeout: float):
        """The next ``(frame, timestamp, arrival)`` (arrival: ``time.perf_counter()``
        when it was read whole); None when none came within ``timeout`` seconds;
        raises StopIteration at the end (re-raising a reader error)."""
        with self.condition:
            if not self.queue:
                self.condition.wait(timeout)
            if not self.queue:
                return None
            item = self.queue.popleft()
            self.condition.notify_all()
        if item is self._END:
            if self.error is not None:
                raise self.error
            raise StopIteration
        return item
