"""Reading the frames of windows, each frame decoded once (score.py, detect.py).

Up to ``seq_len`` windows of a list share a frame, and the 2019 scorer decoded
every frame again for every window. Here the windows are grouped by sequence, each
needed frame is decoded and resized once by decoder threads that run a batch ahead
of the consumer, and the windows are gathered from the frames in memory. OpenCV
releases the GIL while decoding, so the threads overlap with the model.

Hand-centred frames (the manifest's ``frames`` is ``hand``): the box of frame i
depends on the depth frames 0..i, so every frame of a sequence from the first is
decoded (in the threads, with its depth frame) and pushed through one
:class:`coreLib.data.hand_crop.HandTracker` in order (here, in the caller's
thread) - the same boxes and pixels as main.py's. TensorFlow-free.
"""

import collections
import concurrent.futures
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import frames, hand_crop
from coreLib.data.manifest import Manifest
from coreLib.data.window_lists import ListedWindow
from coreLib.errors import ActrecogError


def group_by_sequence(windows: Sequence[ListedWindow]) -> Dict[str, List[int]]:
    """Window numbers per sequence folder, sequences in order of first appearance,
    windows of a sequence by start frame (so frames are read front to back)."""
    groups: Dict[str, List[int]] = collections.OrderedDict()
    for number, window in enumerate(windows):
        groups.setdefault(window.path, []).append(number)
    for numbers in groups.values():
        numbers.sort(key=lambda number: (windows[number].start, number))
    return groups


def needed_frames(windows: Sequence[ListedWindow], numbers: Sequence[int]) -> List[int]:
    """Sorted frame indices that the given windows of one sequence cover."""
    needed = set()
    for number in numbers:
        needed.update(range(windows[number].start, windows[number].stop + 1))
    return sorted(needed)


def check_frames_exist(windows: Sequence[ListedWindow], modality: str) -> None:
    """Proves every frame a window covers exists, listing each folder once.

    Raises:
        ActrecogError: naming the first missing frame (or missing folder).
    """
    for path, numbers in group_by_sequence(windows).items():
        if not storage.isdir(path):
            raise ActrecogError(f"{path}: sequence folder not found")
        present = set(frames.list_frame_indices(path, modality))
        for index in needed_frames(windows, numbers):
            if index not in present:
                raise ActrecogError(f"{frames.frame_path(path, modality, index)}: "
                                    f"frame missing")


def read_resized_frame(path: str, modality: str, index: int, image_dim: int) -> np.ndarray:
    """One frame decoded and resized to ``(D, D, C)`` of the modality's dtype."""
    frame_file = frames.frame_path(path, modality, index)
    data = frames.read_frame_bytes(frame_file)
    return frames.resize_frame(frames.decode_frame(data, modality, frame_file), image_dim)


def read_frame_and_depth(path: str, modality: str, index: int
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """Frame ``index`` of a modality and the depth frame that locates the hand in
    it, both decoded at full size (the same array for depth)."""
    frame = frames.read_frame(path, modality, index)
    if modality == hand_crop.LOCATING_MODALITY:
        return frame, frame
    return frame, frames.read_frame(path, hand_crop.LOCATING_MODALITY, index)


class SequenceCropper:
    """Hand-centred frames of the sequences a reader goes through, frame by frame.

    Frames must come in order, every frame of a sequence from its first; a new
    sequence path starts a new tracker.

    Args:
        config: the tracker's settings (the manifest's).
        image_dim: D.
        boxes: a dict that receives each frame's CropBox by ``(path, index)``
            (detect.py writes them out), or None.

    Attributes:
        frames_without_hand: over every sequence so far.
    """

    def __init__(self, config: hand_crop.HandCropConfig, image_dim: int,
                 boxes: Optional[dict] = None):
        self.config, self.image_dim, self.boxes = config, image_dim, boxes
        self._path: Optional[str] = None
        self._tracker: Optional[hand_crop.HandTracker] = None
        self._next_index = 0
        self.frames_without_hand = 0

    @classmethod
    def for_manifest(cls, manifest: Manifest, boxes: Optional[dict] = None
                     ) -> Optional["SequenceCropper"]:
        """A cropper for a manifest of hand-centred frames; None for full frames."""
        config = manifest.hand_crop_config()
        return None if config is None else cls(config, manifest.image_dim, boxes)

    def crop(self, key: Tuple[str, int], decoded: Tuple[np.ndarray, np.ndarray]
             ) -> np.ndarray:
        """The ``(D, D, C)`` crop of frame ``key`` from :func:`read_frame_and_depth`."""
        path, index = key
        if path != self._path:
            self._path, self._next_index = path, 0
            self._tracker = hand_crop.HandTracker(self.config)
        if index != self._next_index:
            raise ValueError(f"{path}: frame {index} came before frame {self._next_index}")
        frame, depth = decoded
        try:
            box = self._tracker.push(depth)
        except ValueError as error:
            raise ActrecogError(f"{frames.frame_path(path, hand_crop.LOCATING_MODALITY, index)}"
                                f": {error}") from None
        self._next_index += 1
        self.frames_without_hand += int(not box.found)
        if self.boxes is not None:
            self.boxes[key] = box
        return hand_crop.model_frame(frame, box, depth.shape, self.image_dim, self.config)


@dataclass(frozen=True)
class ReadPlan:
    """In which order windows are scored and frames decoded.

    Attributes:
        order: window numbers, sequences in order of first appearance, each
            sequence's windows by start frame (so frames are read front to back).
        frame_keys: ``(sequence path, frame index)`` of every needed frame, once,
            in order of first use.
        first_use, last_use: per frame key, the first and last position in
            ``order`` of a window that covers it.
    """
    order: Tuple[int, ...]
    frame_keys: Tuple[Tuple[str, int], ...]
    first_use: Dict[Tuple[str, int], int]
    last_use: Dict[Tuple[str, int], int]


def make_read_plan(windows: Sequence[ListedWindow], from_start: bool = False) -> ReadPlan:
    """See :class:`ReadPlan`.

    With ``from_start`` (hand-centred frames), every frame of a sequence from
    index 0 up to a window is a frame key too, first used with that window and
    dropped after it unless a window covers it.
    """
    order = tuple(number for numbers in group_by_sequence(windows).values()
                  for number in numbers)
    first_use: Dict[Tuple[str, int], int] = {}
    last_use: Dict[Tuple[str, int], int] = {}
    for position, number in enumerate(order):
        window = windows[number]
        if from_start:
            for index in range(window.start):
                if first_use.setdefault((window.path, index), position) == position:
                    last_use[(window.path, index)] = position
        for index in range(window.start, window.stop + 1):
            key = (window.path, index)
            first_use.setdefault(key, position)
            last_use[key] = position
    return ReadPlan(order, tuple(first_use), first_use, last_use)


def _submit_read(pool: concurrent.futures.ThreadPoolExecutor, key: Tuple[str, int],
                 manifest: Manifest, hand_centred: bool) -> concurrent.futures.Future:
    """Decoding of frame ``key`` in the pool: resized (full frames), or at full size
    with its depth frame (hand-centred: the caller's tracker cuts it)."""
    if hand_centred:
        return pool.submit(read_frame_and_depth, key[0], manifest.modality, key[1])
    return pool.submit(read_resized_frame, key[0], manifest.modality, key[1],
                       manifest.image_dim)


def _gather(windows: Sequence[ListedWindow], numbers: np.ndarray, manifest: Manifest,
            decoded: dict, pending: dict) -> np.ndarray:
    """``(B, L, D, D, C)`` pixels of the windows ``numbers`` from the decoded frames
    (moving finished decodes from ``pending`` into ``decoded``)."""
    pixels = np.empty((len(numbers),) + manifest.window_shape, np.dtype(manifest.dtype))
    for row, number in enumerate(numbers):
        window = windows[number]
        for offset in range(manifest.seq_len):
            key = (window.path, window.start + offset)
            frame = decoded.get(key)
            if frame is None:
                frame = decoded[key] = pending.pop(key).result()
            pixels[row, offset] = frame
    return pixels


def iterate_batches(windows: Sequence[ListedWindow], manifest: Manifest,
                    batch_size: int, workers: int = 2, boxes: Optional[dict] = None
                    ) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yields batches of windows' stored pixels, decoding each frame once.

    ``workers`` threads decode the needed frames in reading order (OpenCV releases
    the GIL), up to the frames of the batch after the one being yielded, across
    sequence boundaries; so while the caller runs the model on one batch, the
    next one is being decoded. A frame is dropped after the last window that
    covers it, so memory holds about two batches' frames.

    Args:
        windows: the Test windows.
        manifest: modality, image_dim, seq_len and dtype.
        batch_size: windows per batch (the last one may be smaller).
        workers: decoding threads.
        boxes: hand-centred frames: a dict that receives every frame's
            :class:`coreLib.data.hand_crop.CropBox` by ``(path, index)``.

    Yields:
        ``(numbers, pixels, rotations, flips)``: ``(B,)`` int64 window positions in
        the JSON, ``(B, L, D, D, C)`` array of the manifest's dtype, ``(B,)`` int32
        rotations and ``(B,)`` int32 flips.

    Raises:
        ActrecogError: a frame that cannot be read or decoded.
    """
    cropper = SequenceCropper.for_manifest(manifest, boxes)
    plan = make_read_plan(windows, from_start=cropper is not None)
    order = plan.order
    pending: Dict[Tuple[str, int], concurrent.futures.Future] = {}
    decoded: Dict[Tuple[str, int], np.ndarray] = {}
    submitted = cropped = 0
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        for begin in range(0, len(order), batch_size):
            end = min(begin + batch_size, len(order))
            # Everything the next batch needs goes to the decoders now.
            horizon = min(end + batch_size, len(order))
            while (submitted < len(plan.frame_keys)
                   and plan.first_use[plan.frame_keys[submitted]] < horizon):
                key = plan.frame_keys[submitted]
                pending[key] = _submit_read(pool, key, manifest, cropper is not None)
                submitted += 1
            # Hand-centred: this batch's frames through the tracker, in order.
            while (cropper is not None and cropped < submitted
                   and plan.first_use[plan.frame_keys[cropped]] < end):
                key = plan.frame_keys[cropped]
                decoded[key] = cropper.crop(key, pending.pop(key).result())
                cropped += 1
            numbers = np.array(order[begin:end], np.int64)
            pixels = _gather(windows, numbers, manifest, decoded, pending)
            for key in [key for key in decoded if plan.last_use[key] < end]:
                del decoded[key]
            rotations = np.array([windows[n].rotation for n in numbers], np.int32)
            flips = np.array([windows[n].flip for n in numbers], np.int32)
            yield numbers, pixels, rotations, flips
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
