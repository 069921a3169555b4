"""Hand-centred frames: find the hand in each depth frame and crop a square around it.

At arm's length a hand spans 40-60 pixels of a 320x240 ego-centric depth frame;
resized whole to 32x32 it keeps 4-6 pixels and no fingers. Ego-centric depth makes
the hand cheap to find - it is the nearest sizeable object - so each frame is cut
to a square of fixed physical size around it (``side_mm`` at the hand's depth:
the side in pixels goes as 1/z) before it is resized to the model's side.

The box follows the hand through a *causal* smoother: an exponential average of
the centre, the depth and the hand's width, updated frame by frame, so the box of
frame i depends on depth frames 0..i only. :class:`HandTracker` holds that state
(``push(depth) -> CropBox``); every tool feeds it the same frames in the same order
(main.py, score.py, detect.py offline, online and live, the stream models), so the
pixels are identical wherever a frame is read. A frame without a hand (empty view,
all zeros, the hand gone) keeps the last box - at the start the frame's centre -
and is counted, never an error and never a jump.

Confidence and colour frames are cut with the box found in the depth frame of the
same index; a frame of another resolution (colour) by coordinates scaled to it.

The crop follows the hand, so it removes the hand's motion - which is what tells
motion-defined classes (a swipe, a circle) apart. With ``path="motion"`` every
frame also carries the hand's motion since the previous frame (in box sides, and
depth in ``side_mm``) as extra constant channels after the frame's own:
:func:`model_frame` builds that frame tensor, and every tool (main.py, score.py,
export calibration, detect.py offline, online and live) calls it, so the frames
agree wherever they are built.

TensorFlow-free: numpy and OpenCV only (main.py's decoding workers import it).
"""

import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Tuple

import cv2
import numpy as np

from coreLib.data import frames as frames_lib

# How the frames are given to the models (main.py --frames): the whole frame
# resized (1.0.4's), or a square around the hand.
FULL_FRAMES = "full"
HAND_FRAMES = "hand"
FRAME_MODES = (FULL_FRAMES, HAND_FRAMES)
# The modality whose frames say where the hand is.
LOCATING_MODALITY = "depth"
# Values kept per frame: centre x, centre y, side (pixels of the depth frame) and
# the smoothed hand depth (mm).
BOX_FIELDS = ("center_x", "center_y", "side", "depth_mm")
# What hand-centred frames carry of the hand's path (main.py --hand-path): nothing
# but the crop, or the hand's motion since the previous frame as extra channels.
PATH_NONE = "none"
PATH_MOTION = "motion"
PATH_MODES = (PATH_NONE, PATH_MOTION)
# The motion channels, in order: the raw hand centre's step in x and y (in box
# sides) and its depth's step (in side_mm); 0 unless the hand was found in both
# this frame and the previous one.
MOTION_FIELDS = ("step_x", "step_y", "step_depth")
# A step of +-MOTION_RANGE maps to the channel's full range (0.5 +- 0.5 of the
# model's input scale, 0.5 = still); larger steps are clipped. Fast strokes of
# the synthetic families move about 0.35 box sides a frame.
MOTION_RANGE = 0.5


@dataclass(frozen=True)
class HandCropConfig:
    """How the hand is found and how the box follows it.

    Attributes:
        side_mm: side of the cropped square at the hand's depth, millimetres.
        smoothing: weight of the newest frame in the exponential averages
            (1: no smoothing; 0.4 follows within about L = 6 frames).
        field_of_view_deg: the depth camera's horizontal field of view; with the
            frame's width it gives the focal length that turns millimetres at a
            depth into pixels.
        near_mm, reach_mm: the depths a hand may have (nearer: sensor noise;
            farther: beyond the arm, a table or a wall).
        layer_mm: depth extent of the hand behind its nearest point.
        min_area_mm2: the smallest region that counts as a hand (smaller near
            regions are noise or flying pixels, and are passed over).
        width_margin: a hand wider than ``side_mm / width_margin`` (drawn larger
            than life) widens the box to ``width_margin`` times its width ...
        max_side_factor: ... up to this many times ``side_mm``.
        start_depth_mm: the depth assumed before the first hand is seen.
        path: :data:`PATH_NONE` (the crop alone) or :data:`PATH_MOTION` (and
            the hand's motion as :data:`MOTION_FIELDS` channels).
    """
    side_mm: float = 150.0
    smoothing: float = 0.4
    field_of_view_deg: float = 74.0
    near_mm: int = 150
    reach_mm: int = 850
    layer_mm: int = 120
    min_area_mm2: float = 1200.0
    width_margin: float = 1.25
    max_side_factor: float = 2.5
    start_depth_mm: float = 500.0
    path: str = PATH_NONE

    def __post_init__(self):
        if self.path not in PATH_MODES:
            raise ValueError(f"path must be one of {', '.join(PATH_MODES)}, got {self.path!r}")
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing!r}")
        if not 0 < self.field_of_view_deg < 180:
            raise ValueError(f"field_of_view_deg must be in (0, 180), "
                             f"got {self.field_of_view_deg!r}")
        for name in ("side_mm", "layer_mm", "min_area_mm2", "start_depth_mm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 < self.near_mm < self.reach_mm <= 65535:
            raise ValueError(f"need 0 < near_mm < reach_mm <= 65535, got "
                             f"{self.near_mm}, {self.reach_mm}")
        if self.width_margin <= 0 or self.max_side_factor < 1:
            raise ValueError("width_margin must be positive and max_side_factor >= 1")

    @property
    def path_channels(self) -> int:
        """Channels a frame carries after its own: 3 with motion, else 0."""
        return len(MOTION_FIELDS) if self.path == PATH_MOTION else 0

    def focal_px(self, width: int) -> float:
        """Focal length in pixels of a frame ``width`` pixels wide."""
        return (width / 2.0) / math.tan(math.radians(self.field_of_view_deg) / 2.0)


@dataclass(frozen=True)
class HandRegion:
    """The hand found in one depth frame (not smoothed).

    Attributes:
        center_x, center_y: centroid of the hand's upper part, pixels.
        depth_mm: median depth of the hand's pixels.
        width_mm: horizontal extent of the hand's upper part, millimetres.
        area_px: pixels of the whole region.
    """
    center_x: float
    center_y: float
    depth_mm: float
    width_mm: float
    area_px: int


@dataclass(frozen=True)
class CropBox:
    """The square cut from one frame, in the depth frame's pixel coordinates.

    Attributes:
        center_x, center_y: the square's centre (pixels, x right, y down).
        side: its side in pixels.
        depth_mm: the smoothed hand depth the side was computed from.
        found: whether a hand was found in this frame (else the box was held).
        motion: :data:`MOTION_FIELDS`, the raw (unsmoothed) hand's step since
            the previous frame; zeros unless the hand was found in both.
    """
    center_x: float
    center_y: float
    side: float
    depth_mm: float
    found: bool
    motion: Tuple[float, float, float] = (0.0, 0.0, 0.0)

    def as_array(self) -> np.ndarray:
        """``(4,)`` float32: :data:`BOX_FIELDS`."""
        return np.array([self.center_x, self.center_y, self.side, self.depth_mm],
                        np.float32)


def frame_channels(modality_channels: int, config: Optional[HandCropConfig]) -> int:
    """Channels of the frames a model takes: the modality's, plus the path
    channels of hand-centred frames (``config``; None: full frames)."""
    return modality_channels + (config.path_channels if config is not None else 0)


def _depth_plane(depth: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint16 from an ``(H, W)`` or ``(H, W, 1)`` depth frame."""
    plane = depth[:, :, 0] if depth.ndim == 3 else depth
    if plane.dtype != np.uint16:
        raise ValueError(f"depth frames are uint16 millimetres, got {plane.dtype}")
    return np.ascontiguousarray(plane)


def find_hand(depth: np.ndarray, config: HandCropConfig,
              expected_side_mm: Optional[float] = None) -> Optional[HandRegion]:
    """The nearest sizeable connected region of a depth frame, or None.

    A 5x5 median first removes isolated zeros and flying pixels (the lone
    in-between depths at an object's edge). Then, from the nearest remaining
    depth z0, the pixels within ``layer_mm`` behind it are split into 8-connected
    regions; the nearest one of at least ``min_area_mm2`` (at z0) is the hand. When
    every region is smaller, those pixels are passed over and the next layer is
    tried (a few times): so a speck in front never hides the hand, and a table or
    a second object farther than ``layer_mm`` behind it is never merged with it.

    The centre is taken over the region's upper part (the rows of one box below
    its top): a forearm entering from the bottom of the frame does not pull the
    box off the hand.

    Only the part of the frame around pixels within reach is searched
    (:func:`_search_window`): the same region as over the whole frame, bit for
    bit, at a fraction of the cost when the hand is small.

    Args:
        depth: ``(H, W)`` or ``(H, W, 1)`` uint16 millimetres (0: no return).
        config: the search ranges.
        expected_side_mm: side of the box (default ``config.side_mm``) that
            bounds the upper part.

    Returns:
        The region, or None (no near pixels, or only specks).
    """
    raw = _depth_plane(depth)
    focal = config.focal_px(raw.shape[1])
    window = _search_window(raw, config)
    if window is None:
        return None
    top, bottom, left, right = window
    plane = cv2.medianBlur(np.ascontiguousarray(raw[top:bottom, left:right]), 5)
    candidates = (plane >= config.near_mm) & (plane <= config.reach_mm)
    for _ in range(4):
        if not candidates.any():
            return None
        nearest = int(plane[candidates].min())
        layer = candidates & (plane <= nearest + config.layer_mm)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            layer.view(np.uint8), connectivity=8)
        min_area = config.min_area_mm2 * (focal / max(nearest, 1)) ** 2
        sizeable = [label for label in range(1, count)
                    if stats[label, cv2.CC_STAT_AREA] >= min_area]
        if sizeable:
            # The nearest of them (not the largest: a table reaching into the
            # layer may be larger than the hand).
            masks = [labels == label for label in sizeable]
            nearest_of = [int(plane[mask].min()) for mask in masks]
            choice = int(np.argmin(nearest_of))
            return _region(plane, masks[choice], stats[sizeable[choice]], focal,
                           expected_side_mm or config.side_mm, (left, top))
        candidates &= ~layer
    return None


def _search_window(raw: np.ndarray, config: HandCropConfig
                   ) -> Optional[Tuple[int, int, int, int]]:
    """``(top, bottom, left, right)``: the part of an ``(H, W)`` depth frame whose
    5x5 median gives every pixel of the whole frame's median within reach; None
    when no pixel is within reach.

    A median of 25 values lies within ``[near_mm, reach_mm]`` only if one of the
    values does (13 are at most the median and 13 at least it: one is both), so
    the whole frame's median is within reach only within 2 pixels of a raw pixel
    within reach: inside that pixels' bounding box grown by 2. The median of the
    box grown by 2 more (the pixels it reads; the frame's own edges replicate as
    before) is the whole frame's there; its other pixels are out of reach in both.
    """
    within = (raw >= config.near_mm) & (raw <= config.reach_mm)
    rows = np.flatnonzero(within.any(axis=1))
    if not rows.size:
        return None
    columns = np.flatnonzero(within.any(axis=0))
    height, width = raw.shape
    return (max(int(rows[0]) - 4, 0), min(int(rows[-1]) + 5, height),
            max(int(columns[0]) - 4, 0), min(int(columns[-1]) + 5, width))


def _region(plane: np.ndarray, mask: np.ndarray, stats: np.ndarray, focal: float,
            side_mm: float, origin: Tuple[int, int]) -> HandRegion:
    """Centre, depth and width of one region (see :func:`find_hand`); ``plane``,
    ``mask`` and ``stats`` are of the search window whose top-left pixel is
    ``origin`` (x, y) of the frame. Frame coordinates are added as integers
    before any mean, so the centre is the whole frame's to the last bit."""
    depth_mm = float(np.median(plane[mask]))
    top = int(stats[cv2.CC_STAT_TOP])
    rows = max(1, int(round(side_mm * focal / depth_mm)))
    upper = mask[top:top + rows]
    ys, xs = np.nonzero(upper)
    xs = xs + origin[0]
    width_px = int(xs.max() - xs.min() + 1)
    return HandRegion(center_x=float(xs.mean()), center_y=float(ys.mean() + (top + origin[1])),
                      depth_mm=depth_mm, width_mm=width_px * depth_mm / focal,
                      area_px=int(stats[cv2.CC_STAT_AREA]))


class HandTracker:
    """The causal smoother: one depth frame in, that frame's crop box out.

    Holds exponential averages of the hand's centre, depth and width; a frame
    without a hand leaves them as they are. Frames must be pushed in order,
    every frame of a sequence from its first; a new sequence needs a new tracker.

    Attributes:
        frames_seen: frames pushed so far.
        frames_without_hand: of those, frames where no hand was found.
    """

    def __init__(self, config: HandCropConfig = HandCropConfig()):
        self.config = config
        self.frames_seen = 0
        self.frames_without_hand = 0
        self._state: Optional[Tuple[float, float, float, float]] = None
        self._frame_size: Optional[Tuple[int, int]] = None
        self._last_region: Optional[HandRegion] = None   # the previous frame's

    def push(self, depth: np.ndarray) -> CropBox:
        """Updates the averages with one frame and returns its box.

        Args:
            depth: ``(H, W)`` or ``(H, W, 1)`` uint16 millimetres; every frame of
                a sequence the same size.

        Returns:
            The frame's :class:`CropBox`.
        """
        config = self.config
        height, width = depth.shape[:2]
        if self._state is None:
            self._frame_size = (height, width)
            self._state = (width / 2.0, height / 2.0, config.start_depth_mm, 0.0)
        elif self._frame_size != (height, width):
            raise ValueError(f"frame of {width}x{height} pixels after frames of "
                             f"{self._frame_size[1]}x{self._frame_size[0]}")
        center_x, center_y, depth_mm, width_mm = self._state
        region = find_hand(depth, config, self._side_mm(width_mm))
        self.frames_seen += 1
        if region is None:
            self.frames_without_hand += 1
        else:
            weight = config.smoothing
            center_x += weight * (region.center_x - center_x)
            center_y += weight * (region.center_y - center_y)
            depth_mm += weight * (region.depth_mm - depth_mm)
            width_mm += weight * (region.width_mm - width_mm)
            self._state = (center_x, center_y, depth_mm, width_mm)
        side = self._side_mm(width_mm) * config.focal_px(width) / depth_mm
        motion = (0.0, 0.0, 0.0)
        last, self._last_region = self._last_region, region
        if region is not None and last is not None:
            motion = ((region.center_x - last.center_x) / side,
                      (region.center_y - last.center_y) / side,
                      (region.depth_mm - last.depth_mm) / config.side_mm)
        return CropBox(center_x, center_y, side, depth_mm, region is not None, motion)

    def _side_mm(self, width_mm: float) -> float:
        """The box's physical side: ``side_mm``, or wider for a hand drawn larger."""
        config = self.config
        return min(max(config.side_mm, config.width_margin * width_mm),
                   config.max_side_factor * config.side_mm)


def box_bounds(box: CropBox, frame_shape: Tuple[int, ...],
               depth_shape: Tuple[int, ...]) -> Tuple[int, int, int, int]:
    """The integer rectangle ``(left, top, width, height)`` that ``box`` covers in a
    frame of ``frame_shape`` (a box found in a depth frame of ``depth_shape``);
    it may reach outside the frame."""
    scale_x = frame_shape[1] / depth_shape[1]
    scale_y = frame_shape[0] / depth_shape[0]
    box_width = max(1, int(round(box.side * scale_x)))
    box_height = max(1, int(round(box.side * scale_y)))
    left = int(math.floor(box.center_x * scale_x - box_width / 2.0 + 0.5))
    top = int(math.floor(box.center_y * scale_y - box_height / 2.0 + 0.5))
    return left, top, box_width, box_height


def cut_box(frame: np.ndarray, bounds: Tuple[int, int, int, int]) -> np.ndarray:
    """The rectangle ``bounds`` of an ``(H, W, C)`` frame; parts outside the frame
    are zero (depth: no return), so a box at an edge keeps its size and place."""
    left, top, box_width, box_height = bounds
    height, width = frame.shape[:2]
    out = np.zeros((box_height, box_width) + frame.shape[2:], frame.dtype)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + box_width, width), min(top + box_height, height)
    if x0 < x1 and y0 < y1:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = frame[y0:y1, x0:x1]
    return out


def crop_frame(frame: np.ndarray, box: CropBox, depth_shape: Tuple[int, ...],
               image_dim: int) -> np.ndarray:
    """One frame cut to ``box`` and resized to ``(D, D, C)``, the frame's dtype.

    Area interpolation as :func:`coreLib.data.frames.resize_frame` (the crop is
    usually shrunk).

    Args:
        frame: ``(H, W, C)`` uint8 or uint16, any modality.
        box: from :meth:`HandTracker.push` on the depth frame of the same index.
        depth_shape: that depth frame's shape (colour may differ in size).
        image_dim: D.
    """
    patch = cut_box(frame, box_bounds(box, frame.shape, depth_shape))
    if patch.shape[0] != image_dim or patch.shape[1] != image_dim:
        interpolation = (cv2.INTER_AREA if patch.shape[0] >= image_dim
                         else cv2.INTER_LINEAR)
        patch = cv2.resize(patch, (image_dim, image_dim), interpolation=interpolation)
    if patch.ndim == 2:
        patch = patch[:, :, np.newaxis]
    return patch


def path_channels(box: CropBox, config: HandCropConfig, image_dim: int,
                  dtype: str) -> Optional[np.ndarray]:
    """The path channels of one frame (see ``HandCropConfig.path``), or None.

    Returns:
        ``(D, D, 3)`` of ``dtype`` (uint8 or uint16): per :data:`MOTION_FIELDS`
        a constant plane, ``0.5 + step / (2 * MOTION_RANGE)`` clipped to [0, 1]
        of the model's input scale (:data:`frames.MODEL_INPUT_SCALE`), rounded;
        None without path channels.
    """
    if config.path_channels == 0:
        return None
    scale = frames_lib.MODEL_INPUT_SCALE[np.dtype(dtype).name]
    steps = np.array(box.motion, np.float64)
    levels = np.rint(np.clip(0.5 + steps / (2.0 * MOTION_RANGE), 0.0, 1.0) * scale)
    return np.broadcast_to(levels.astype(dtype), (image_dim, image_dim, len(levels)))


def model_frame(frame: np.ndarray, box: CropBox, depth_shape: Tuple[int, ...],
                image_dim: int, config: HandCropConfig, is_bgr: bool = False
                ) -> np.ndarray:
    """The frame tensor a model gets for one hand-centred frame: the crop (RGB),
    then the path channels. Every tool builds hand-centred frames with this.

    Args:
        frame: ``(H, W, C)`` uint8 or uint16, any modality.
        box: from :meth:`HandTracker.push` on the depth frame of the same index.
        depth_shape: that depth frame's shape.
        image_dim: D.
        config: the tracker's settings (``path`` says which channels follow).
        is_bgr: ``frame`` is OpenCV's BGR colour (turned to RGB here).

    Returns:
        ``(D, D, C + config.path_channels)`` of the frame's dtype.
    """
    crop = crop_frame(frame, box, depth_shape, image_dim)
    if is_bgr:
        crop = crop[:, :, ::-1]
    extra = path_channels(box, config, image_dim, crop.dtype)
    if extra is None:
        return crop
    return np.concatenate([crop, extra], axis=2)


def hand_frames(depth_frames: Iterable[np.ndarray], image_dim: int,
                config: HandCropConfig = HandCropConfig(),
                other_frames: Optional[Iterable[np.ndarray]] = None,
                tracker: Optional[HandTracker] = None
                ) -> Iterator[Tuple[np.ndarray, CropBox]]:
    """Hand-centred frames of one sequence, in order.

    Args:
        depth_frames: the sequence's ``(H, W, 1)`` uint16 depth frames, in order.
        image_dim: D.
        config: the tracker's settings.
        other_frames: the frames to cut (confidence or colour) when not the depth
            frames themselves, the same count in the same order.
        tracker: a tracker to continue (default: a new one).

    Yields:
        ``((D, D, C + path channels) frame, CropBox)`` per frame (:func:`model_frame`).
    """
    tracker = tracker or HandTracker(config)
    if other_frames is None:
        for depth in depth_frames:
            box = tracker.push(depth)
            yield model_frame(depth, box, depth.shape, image_dim, tracker.config), box
        return
    for depth, frame in zip(depth_frames, other_frames, strict=True):
        box = tracker.push(depth)
        yield model_frame(frame, box, depth.shape, image_dim, tracker.config), box
