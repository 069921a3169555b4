"""Each sequence decoded once, resized, and kept in a local cache file; windows read
back from those files.

main.py's windows overlap (a frame sits in up to L windows) and the Train list
is shuffled, so instead of decoding frames per window (the 2019 tool: up to 192
decodes per frame), every sequence is read, decoded, checked and resized once by
a worker process into a raw file of ``(N, D, D, C)`` pixels; the windows are then
cut from those files with positioned reads (:class:`CacheReader`, used by
:mod:`coreLib.preprocessing.shard_writer`). Only the page cache ever holds the
whole dataset; a process holds one sequence (a few MB at 64x64) at a time.

This module imports no TensorFlow, so the worker processes (``spawn``) start in
a fraction of a second and stay small; only a ``gs://`` source makes a worker
import TensorFlow to read its frames.
"""

import collections
import os
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np

from coreLib import storage
from coreLib.data import frames
from coreLib.data import hand_crop as hand_crop_lib
from coreLib.errors import ActrecogError
from coreLib.preprocessing import png_check

TEMP_MARKER = storage.TEMP_MARKER  # swept the same way
_BOX_BYTES = 4 * len(hand_crop_lib.BOX_FIELDS)  # float32 per field
_MAX_OPEN_FILES = 128


@dataclass(frozen=True)
class DecodeTask:
    """One sequence to decode.

    Attributes:
        sequence_dir: the sequence folder (local path or URI).
        modality: ``color``, ``depth`` or ``confi``.
        num_frames: N; frames ``0 .. N-1`` are read.
        image_dim: D, side of the resized frames.
        cache_file: local file to write. With ``store`` it receives the resized
            ``(N, D, D, C)`` pixels (row-major, native byte order); without, an
            empty file that only records that the frames were checked.
        store: keep the pixels (Train/Eval) or only check the frames (Test).
        needed: with ``store``, the half-open frame ranges that some window
            reads; the other frames are only checked (their cached pixels stay
            zero and are never read). None: every frame.
        hand_crop: hand-centred frames (main.py --frames hand): every frame's
            depth goes through a tracker with these settings and the stored
            pixels are its crops; the boxes, ``(N, 4)`` float32, follow the
            pixels in the cache file. None: whole frames resized.
    """
    sequence_dir: str
    modality: str
    num_frames: int
    image_dim: int
    cache_file: str
    store: bool = True
    needed: Optional[Tuple[Tuple[int, int], ...]] = None
    hand_crop: Optional[hand_crop_lib.HandCropConfig] = None

    def needed_mask(self) -> np.ndarray:
        """``(N,)`` bool: the frames whose resized pixels are cached."""
        if not self.store:
            return np.zeros(self.num_frames, bool)
        if self.needed is None:
            return np.ones(self.num_frames, bool)
        mask = np.zeros(self.num_frames, bool)
        for begin, end in self.needed:
            mask[begin:end] = True
        return mask

    @property
    def shape(self) -> Tuple[int, int, int, int]:
        """``(N, D, D, C)`` of the cached pixels."""
        channels = hand_crop_lib.frame_channels(frames.modality_spec(self.modality).channels,
                                                self.hand_crop)
        return (self.num_frames, self.image_dim, self.image_dim, channels)

    @property
    def pixel_bytes(self) -> int:
        """Bytes of the cached pixels (the start of the cache file)."""
        if not self.store:
            return 0
        itemsize = np.dtype(frames.modality_spec(self.modality).dtype).itemsize
        return int(np.prod(self.shape)) * itemsize

    @property
    def tracks_hand(self) -> bool:
        """Whether the cache file holds hand-centred frames and their boxes."""
        return self.store and self.hand_crop is not None

    @property
    def cache_bytes(self) -> int:
        """Size of a complete cache file: the pixels, then the boxes if any."""
        boxes = self.num_frames * _BOX_BYTES if self.tracks_hand else 0
        return self.pixel_bytes + boxes


def quiet_opencv() -> None:
    """Stops OpenCV printing warnings (e.g. about a truncated PNG) on stderr.

    A bad frame is reported once, as an ActrecogError naming the file; OpenCV's
    own ``[ WARN:...]`` lines would add more lines to stderr.
    """
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def init_worker() -> None:
    """Pool initializer: quiet OpenCV, one OpenCV thread per worker (the workers
    are the parallelism)."""
    quiet_opencv()
    cv2.setNumThreads(1)


def is_cached(task: DecodeTask) -> bool:
    """True when a previous (possibly killed) run already completed this task."""
    try:
        return os.path.getsize(task.cache_file) == task.cache_bytes
    except OSError:
        return False


class Decoded(NamedTuple):
    """What decoding a sequence did: frames decoded, and of those (hand-centred
    frames) the frames where the tracker found no hand."""
    frames: int
    without_hand: int = 0


def decode_sequence(task: DecodeTask) -> Decoded:
    """Reads, checks, decodes and resizes every frame of a sequence once.

    Frames whose pixels no window reads (all of Test, some of Train) are only
    checked, by :func:`coreLib.preprocessing.png_check.checked_png_size` where it
    is certain, else by a full decode.

    The cache file appears under its final name only when complete (written
    under a temporary name and renamed), so a killed run leaves no partial file
    that a later run could take for a finished one.

    Args:
        task: what to decode and where to put it.

    Returns:
        Frames decoded (0 when the cache file already existed) and, for
        hand-centred frames, how many of them had no hand.

    Raises:
        ActrecogError: a missing, unreadable or corrupt frame, wrong bit depth or
            channel count, or frames of different sizes (naming the file).
    """
    if is_cached(task):
        return Decoded(0)
    if task.tracks_hand:
        pixels, boxes, without_hand = _decode_hand_sequence(task)
        _write_cache_file(task, [pixels, boxes])
        return Decoded(task.num_frames, without_hand)
    pixels: Optional[np.ndarray] = None
    first_size = None
    if task.store:
        spec = frames.modality_spec(task.modality)
        pixels = np.zeros(task.shape, spec.dtype)
    needed = task.needed_mask().tolist()
    for index in range(task.num_frames):
        path = frames.frame_path(task.sequence_dir, task.modality, index)
        try:
            data = frames.read_frame_bytes(path)   # a missing frame: ActrecogError
        except OSError as error:
            raise ActrecogError(f"{path}: cannot read frame ({error.strerror or error})") from None
        frame, is_bgr, size = None, False, None
        if not needed[index]:
            size = png_check.checked_png_size(data, task.modality)
        if size is None:
            frame, is_bgr = png_check.decode_unconverted(data, task.modality, path)
            size = frame.shape[:2]
        if first_size is None:
            first_size = size
        elif size != first_size:
            raise ActrecogError(
                f"{path}: {size[1]}x{size[0]} pixels, but frame 0 of the sequence is "
                f"{first_size[1]}x{first_size[0]}")
        if needed[index]:
            small = frames.resize_frame(frame, task.image_dim)
            pixels[index] = small[:, :, ::-1] if is_bgr else small
    _write_cache_file(task, [] if pixels is None else [pixels])
    return Decoded(task.num_frames)


def _read_frame_checked(task: DecodeTask, modality: str, index: int,
                        first_size: Optional[Tuple[int, int]]) -> Tuple[np.ndarray, bool]:
    """Frame ``index`` of a modality decoded (colour left BGR, see
    :func:`coreLib.preprocessing.png_check.decode_unconverted`), checked to have
    the size of ``first_size``."""
    path = frames.frame_path(task.sequence_dir, modality, index)
    try:
        data = frames.read_frame_bytes(path)
    except OSError as error:
        raise ActrecogError(f"{path}: cannot read frame ({error.strerror or error})") from None
    frame, is_bgr = png_check.decode_unconverted(data, modality, path)
    size = frame.shape[:2]
    if first_size is not None and size != first_size:
        raise ActrecogError(
            f"{path}: {size[1]}x{size[0]} pixels, but frame 0 of the sequence is "
            f"{first_size[1]}x{first_size[0]}")
    return frame, is_bgr


def _decode_hand_sequence(task: DecodeTask) -> Tuple[np.ndarray, np.ndarray, int]:
    """Hand-centred frames of a sequence: every depth frame, from the first, goes
    through one :class:`hand_crop.HandTracker` (the box of frame i depends on
    frames 0..i), and the needed frames of the task's modality are cut to their
    boxes and resized.

    Returns:
        ``((N, D, D, C) pixels, (N, 4) float32 boxes, frames without a hand)``;
        unneeded frames' pixels stay zero.
    """
    spec = frames.modality_spec(task.modality)
    pixels = np.zeros(task.shape, spec.dtype)
    boxes = np.zeros((task.num_frames, len(hand_crop_lib.BOX_FIELDS)), np.float32)
    tracker = hand_crop_lib.HandTracker(task.hand_crop)
    needed = task.needed_mask().tolist()
    sizes = {}
    for index in range(task.num_frames):
        frame, is_bgr = _read_frame_checked(task, task.modality, index,
                                            sizes.get(task.modality))
        sizes.setdefault(task.modality, frame.shape[:2])
        depth = frame
        if task.modality != hand_crop_lib.LOCATING_MODALITY:
            depth, _ = _read_frame_checked(task, hand_crop_lib.LOCATING_MODALITY, index,
                                           sizes.get(hand_crop_lib.LOCATING_MODALITY))
            sizes.setdefault(hand_crop_lib.LOCATING_MODALITY, depth.shape[:2])
        box = tracker.push(depth)
        boxes[index] = box.as_array()
        if needed[index]:
            pixels[index] = hand_crop_lib.model_frame(frame, box, depth.shape, task.image_dim,
                                                      task.hand_crop, is_bgr)
    return pixels, boxes, tracker.frames_without_hand


def _write_cache_file(task: DecodeTask, arrays) -> None:
    """Writes the arrays' bytes, one after the other, as the task's cache file
    (under a temporary name, then renamed: never a partial file)."""
    temp = f"{task.cache_file}{TEMP_MARKER}{os.getpid()}"
    try:
        with open(temp, "wb") as handle:
            for array in arrays:
                array.tofile(handle)
        os.replace(temp, task.cache_file)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def remove_temporaries(folder: str) -> None:
    """Deletes ``*.tmp-*`` files a killed run left in a local cache folder."""
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if TEMP_MARKER in name:
                os.remove(os.path.join(folder, name))


class CacheReader:
    """Cuts windows out of cache files with positioned reads.

    Reads instead of memory maps on purpose: mapped pages count towards the
    process's resident size, and a shuffled Train list touches every sequence,
    so maps would make the RSS grow to the size of the whole cache.
    """

    def __init__(self, tasks):
        """
        Args:
            tasks: sequence of :class:`DecodeTask` (with ``store``), indexed by the
                sequence number used in :meth:`window`.
        """
        self._tasks = list(tasks)
        self._open = collections.OrderedDict()  # sequence -> file descriptor, LRU
        self._frame_sizes = {}

    def _frame_bytes(self, sequence: int) -> int:
        size = self._frame_sizes.get(sequence)
        if size is None:
            task = self._tasks[sequence]
            size = self._frame_sizes[sequence] = task.pixel_bytes // task.num_frames
        return size

    def _descriptor(self, sequence: int) -> int:
        descriptor = self._open.pop(sequence, None)
        if descriptor is None:
            if len(self._open) >= _MAX_OPEN_FILES:
                _, oldest = self._open.popitem(last=False)
                os.close(oldest)
            descriptor = os.open(self._tasks[sequence].cache_file, os.O_RDONLY)
        self._open[sequence] = descriptor
        return descriptor

    def window_bytes(self, sequence: int, start: int, seq_len: int) -> bytes:
        """The bytes of frames ``start .. start+seq_len-1`` of a cached sequence
        (``(L, D, D, C)`` row-major, native byte order)."""
        task = self._tasks[sequence]
        frame_bytes = self._frame_bytes(sequence)
        size = frame_bytes * seq_len
        data = os.pread(self._descriptor(sequence), size, frame_bytes * start)
        if len(data) != size:
            raise OSError(f"{task.cache_file}: cache file shorter than expected")
        return data

    def window_boxes(self, sequence: int, start: int, seq_len: int) -> Optional[bytes]:
        """The crop boxes of frames ``start .. start+seq_len-1`` (``(L, 4)``
        float32, native byte order), or None for a full-frame cache."""
        task = self._tasks[sequence]
        if not task.tracks_hand:
            return None
        size = _BOX_BYTES * seq_len
        data = os.pread(self._descriptor(sequence), size,
                        task.pixel_bytes + _BOX_BYTES * start)
        if len(data) != size:
            raise OSError(f"{task.cache_file}: cache file shorter than expected")
        return data

    def window(self, sequence: int, start: int, seq_len: int) -> np.ndarray:
        """Frames ``start .. start+seq_len-1`` of a cached sequence.

        Returns:
            ``(L, D, D, C)`` uint8 or uint16 array.
        """
        task = self._tasks[sequence]
        spec = frames.modality_spec(task.modality)
        return np.frombuffer(self.window_bytes(sequence, start, seq_len),
                             spec.dtype).reshape((seq_len,) + task.shape[1:])

    def close(self) -> None:
        while self._open:
            os.close(self._open.popitem()[1])

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
