"""A synthetic hand-action dataset in the exact BII layout.

The published archive cannot be fetched on the machines this project runs on, so
tests, benchmarks and the demo use data generated here. The layout is the one
``main.py`` reads (see the dataset spec)::

    DEST/Train/<subject>/<action>.xml             OpenCV FileStorage label file
    DEST/Train/<subject>/<action>/depth_<i>.png   (H, W) uint16, millimetres
    DEST/Train/<subject>/<action>/confi_<i>.png   (H, W) uint16, IR return
    DEST/Train/<subject>/<action>/color_<i>.png   (H, W, 3) uint8, BGR on disk
    DEST/Test/...                                 same shape
    DEST/TestDetection/<name>.xml                 long sequences of several actions
    DEST/TestDetection/<name>/{depth,confi,color}_<i>.png

Two families (``style``): ``pose`` (below; the default) and ``trajectory``
(:mod:`coreLib.synthetic.trajectory`: one hand shape, the action is its motion).
``TestDetection/`` (:mod:`coreLib.synthetic.detection`) holds long sequences of
unseen subjects with performances of different actions; main.py does not read it.

Each sequence holds ``reps`` performances of its action separated by no-action
frames (also before the first and after the last one). During a performance a
hand is drawn - palm, fingers, thumb, sometimes a pinch ring - whose pose and
motion depend on the action; in no-action frames the hand is absent. The same
geometry is drawn into all three modalities: near depth values and a strong IR
return on the hand, far depth and a weak return on the background, skin tone on a
tinted background in colour.

The action poses are chosen to stay distinct under what training does to a window
(flips and rotations up to 35 degrees, resizing to 32x32): finger count, spread,
rings and finger stubs differ, and orientations that matter differ by 90 degrees.
Subjects differ in speed, hand size, position, skin tone, background and noise,
all derived from the subject name and the seed, so test subjects are unseen.

Everything is deterministic: each sequence draws from its own random generator
seeded by (seed, split, subject, action), so the bytes do not depend on the
number of worker processes or on the order they finish in.
"""

import math
import multiprocessing
import os
import shutil
import sys
import time
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from coreLib.data import labels
from coreLib.errors import ActrecogError

TRAIN_SUBJECTS = ("aiyang", "ashwin", "biru", "chi", "chris", "gulin", "justin",
                  "lakshmi", "LN", "malay", "marc", "michael", "xuchi", "yizhou",
                  "yongzhong")
TEST_SUBJECTS = ("alvin", "etienne", "xiaowei")
ACTIONS = ("asl-bathroom", "asl-blue", "asl-green", "asl-j", "asl-milk",
           "asl-scissors", "asl-where", "asl-yellow", "asl-you", "asl-z",
           "ui-circle", "ui-click", "ui-doubleclick", "ui-keyTap", "ui-screenTap",
           "ui-swipe")
TRAIN_SPLIT = "Train"
TEST_SPLIT = "Test"
SPLITS = (TRAIN_SPLIT, TEST_SPLIT)
DETECTION_SPLIT = "TestDetection"
STYLES = ("pose", "trajectory")
# How large the hands are: ``large`` (drawn larger than life, the default and the
# 1.0.x figures) or ``real`` (a head-worn camera model: hands at arm's length, 40-60
# pixels of a 320x240 frame).
HAND_SIZES = ("large", "real")
# At most this many default-named TestDetection sequences (the published names).
MAX_DETECTION_SEQUENCES = 10

# The published archive (dataset spec): frame totals per split and per test
# subject, and the range of the per-action train totals.
FULL_SIZE_TRAIN_FRAMES = 112_640
FULL_SIZE_TEST_FRAMES = {"alvin": 8_239, "etienne": 6_119, "xiaowei": 7_667}
FULL_SIZE_ACTION_FRAMES_RANGE = (5_547, 8_667)
FULL_SIZE_REPS = 10
FULL_SIZE_MAX_LEN = 48

PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
# Smooth synthetic images compress about as well without PNG's adaptive filter
# choice, which costs several times more per frame.
if hasattr(cv2, "IMWRITE_PNG_FILTER") and hasattr(cv2, "IMWRITE_PNG_FILTER_NONE"):
    PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]

_SIZE_MIN = 16
_SUBPIXEL_BITS = 4  # cv2 drawing with fixed-point coordinates: smooth motion
_SUBPIXEL = 1 << _SUBPIXEL_BITS
_REFERENCE_DISTANCE_MM = 600.0
_SCALED_HAND_DROP = 2.0  # unscaled hand units per unit of hand_scale above 1
# The ``real`` camera model: a head-worn depth camera of this horizontal field of
# view (a SoftKinetic DS325's), hands ARM_SHIFT nearer than the large drawing's
# action distances (430-530 mm at rest: arm's length), one hand unit this many
# millimetres (hands 40-60 pixels across in 320x240), the hand's place in
# the view spread POSITION_SPREAD times wider (an ego-centric view does not keep
# the hand in the middle) and the background boxes pulled to CLUTTER_FACTOR of
# their distance (a table or a second object behind the hand, within reach).
_REAL_FIELD_OF_VIEW_DEG = 74.0
_REAL_ARM_SHIFT_MM = 150.0
_REAL_HAND_UNIT_MM = 25.0
_REAL_POSITION_SPREAD = 3.0
_REAL_CLUTTER_FACTOR = 0.75


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate.

    Attributes:
        train_subjects: subject names of the Train split (may be empty).
        test_subjects: subject names of the Test split (may be empty).
        actions: action names; every subject gets one sequence per action.
        width: frame width in pixels.
        height: frame height in pixels.
        reps: performances of the action per sequence.
        seed: seed of every random choice.
        min_len: shortest performance (frames); exactly one Train/Test
            performance, the first of the first sequence, has this length, so it
            is the dataset's minimum (TestDetection performances are no shorter).
        max_len: longest performance drawn (frames).
        min_gap: fewest no-action frames before, between and after performances.
        max_gap: most no-action frames drawn for a gap (when the frame count of a
            sequence is not fixed).
        frames_per_sequence: if set, every Train sequence has exactly this many
            frames (gaps absorb the difference; performances shrink if needed).
        test_frames_per_sequence: the same for Test (None: frames_per_sequence).
        sequence_frames: exact frame counts of single sequences, as
            ``(subject, action, frames)`` triples; they win over the two above.
        hand_scale: every hand drawn this much larger (as if held closer to the
            camera); the paths the hands move along keep their size. Above 1 the
            poses stay readable in frames resized to 16x16 (the demo).
        style: the family, ``pose`` (each action its own hand pose and motion) or
            ``trajectory`` (one hand shape; each action its own motion).
        hand_size: ``large`` (drawn larger than life, as in 1.0.x) or ``real``: a
            camera model (see :func:`real_hand_unit`) puts the hand at arm's
            length, 40-60 pixels of a 320x240 frame, anywhere in the lower
            two thirds of the view, and the motions keep their size relative to
            the hand; ``hand_scale`` must then be 1.
        detection_sequences: TestDetection sequences (0: none), named after the
            published ones (see :mod:`coreLib.synthetic.detection`).
        detection_frames: frames of each of those sequences.
        detection_performances: performances in each of those sequences.
        detection_plan: ``(name, frames, performances)`` of every TestDetection
            sequence; when given it wins over the three above.
    """
    train_subjects: Tuple[str, ...] = TRAIN_SUBJECTS
    test_subjects: Tuple[str, ...] = TEST_SUBJECTS
    actions: Tuple[str, ...] = ACTIONS
    width: int = 320
    height: int = 240
    reps: int = 4
    seed: int = 0
    min_len: int = 6
    max_len: int = 30
    min_gap: int = 3
    max_gap: int = 12
    frames_per_sequence: Optional[int] = None
    test_frames_per_sequence: Optional[int] = None
    sequence_frames: Tuple[Tuple[str, str, int], ...] = ()
    hand_scale: float = 1.0
    style: str = "pose"
    hand_size: str = "large"
    detection_sequences: int = 2
    detection_frames: int = 300
    detection_performances: int = 10
    detection_plan: Tuple[Tuple[str, int, int], ...] = ()

    def __post_init__(self):
        for name in ("train_subjects", "test_subjects", "actions", "sequence_frames",
                     "detection_plan"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}, got {self.style!r}")
        for label, names in (("train subject", self.train_subjects),
                             ("test subject", self.test_subjects),
                             ("action", self.actions)):
            for item in names:
                if (not isinstance(item, str) or not item or item in (".", "..")
                        or "/" in item or "\\" in item):
                    raise ValueError(f"bad {label} name {item!r}")
            duplicates = sorted({item for item in names if names.count(item) > 1})
            if duplicates:
                raise ValueError(f"{label} names repeated: {', '.join(duplicates)}")
        shared = sorted(set(self.train_subjects) & set(self.test_subjects))
        if shared:
            raise ValueError(f"subjects in both Train and Test: {', '.join(shared)}")
        if not self.train_subjects and not self.test_subjects:
            raise ValueError("no subjects: give train or test subjects")
        if not self.actions:
            raise ValueError("no actions")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < _SIZE_MIN:
                raise ValueError(f"{name} must be an integer >= {_SIZE_MIN}, got {value!r}")
        for name in ("reps", "min_len", "max_len", "min_gap", "max_gap"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.hand_scale, (int, float)) or not 0.25 <= self.hand_scale <= 4:
            raise ValueError(f"hand_scale must be between 0.25 and 4, got {self.hand_scale!r}")
        if self.hand_size not in HAND_SIZES:
            raise ValueError(f"hand_size must be one of {', '.join(HAND_SIZES)}, "
                             f"got {self.hand_size!r}")
        if self.hand_size == "real" and self.hand_scale != 1:
            raise ValueError("hand_scale applies to the large hands only (hand_size "
                             "'real' draws them through the camera model)")
        if self.max_len < self.min_len:
            raise ValueError(f"max_len {self.max_len} is below min_len {self.min_len}")
        if self.max_gap < self.min_gap:
            raise ValueError(f"max_gap {self.max_gap} is below min_gap {self.min_gap}")
        for name in ("frames_per_sequence", "test_frames_per_sequence"):
            value = getattr(self, name)
            if value is not None:
                self._check_frames(value, name)
        subjects = set(self.train_subjects) | set(self.test_subjects)
        seen = set()
        for entry in self.sequence_frames:
            if len(entry) != 3:
                raise ValueError(f"sequence_frames entry {entry!r} is not "
                                 "(subject, action, frames)")
            subject, action, frames = entry
            if subject not in subjects:
                raise ValueError(f"sequence_frames: unknown subject {subject!r}")
            if action not in self.actions:
                raise ValueError(f"sequence_frames: unknown action {action!r}")
            if (subject, action) in seen:
                raise ValueError(f"sequence_frames: {subject}/{action} given twice")
            seen.add((subject, action))
            self._check_frames(frames, f"sequence_frames {subject}/{action}")
        self._check_detection()

    def _check_detection(self) -> None:
        for name in ("detection_sequences", "detection_frames", "detection_performances"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.detection_sequences > MAX_DETECTION_SEQUENCES:
            raise ValueError(f"detection_sequences must be at most "
                             f"{MAX_DETECTION_SEQUENCES}, got {self.detection_sequences}")
        from coreLib.synthetic import detection
        names = []
        for entry in self.detection_entries():
            if len(entry) != 3:
                raise ValueError(f"detection_plan entry {entry!r} is not "
                                 "(name, frames, performances)")
            name, frames, performances = entry
            if (not isinstance(name, str) or not name or name in (".", "..")
                    or "/" in name or "\\" in name):
                raise ValueError(f"bad detection sequence name {name!r}")
            subject = detection.detection_subject(name)
            if subject in self.train_subjects or subject in self.test_subjects:
                raise ValueError(f"detection sequence {name}: its subject {subject!r} is "
                                 "a Train or Test subject (TestDetection subjects are unseen)")
            if not isinstance(performances, int) or performances < 1:
                raise ValueError(f"detection sequence {name}: performances must be a "
                                 f"positive integer, got {performances!r}")
            fewest = performances * self.min_len + (performances + 1) * self.min_gap
            if not isinstance(frames, int) or frames < fewest:
                raise ValueError(
                    f"detection sequence {name}: frames = {frames!r} is too small: "
                    f"{performances} performances of at least {self.min_len} frames and "
                    f"{performances + 1} gaps of at least {self.min_gap} need {fewest}")
            names.append(name)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"detection sequence names repeated: {', '.join(duplicates)}")

    def detection_entries(self) -> List[Tuple[str, int, int]]:
        """``(name, frames, performances)`` of every TestDetection sequence."""
        if self.detection_plan:
            return list(self.detection_plan)
        from coreLib.synthetic import detection
        names = detection.DETECTION_NAMES[:self.detection_sequences]
        return [(name, self.detection_frames, self.detection_performances)
                for name in names]

    @property
    def fewest_frames(self) -> int:
        """The smallest sequence that holds ``reps`` performances and their gaps."""
        return self.reps * self.min_len + (self.reps + 1) * self.min_gap

    def _check_frames(self, value, name: str) -> None:
        if not isinstance(value, int) or value < self.fewest_frames:
            raise ValueError(
                f"{name} = {value!r} is too small: {self.reps} performances of at least "
                f"{self.min_len} frames and {self.reps + 1} gaps of at least "
                f"{self.min_gap} need {self.fewest_frames} frames")

    def frames_of(self, split: str, subject: str, action: str) -> Optional[int]:
        """The fixed frame count of one sequence, or None when it is drawn."""
        for entry_subject, entry_action, frames in self.sequence_frames:
            if entry_subject == subject and entry_action == action:
                return frames
        if split == TEST_SPLIT and self.test_frames_per_sequence is not None:
            return self.test_frames_per_sequence
        return self.frames_per_sequence

    def sequences(self) -> List[Tuple[str, str, str]]:
        """Every ``(split, subject, action)`` in generation order."""
        return ([(TRAIN_SPLIT, subject, action) for subject in self.train_subjects
                 for action in self.actions]
                + [(TEST_SPLIT, subject, action) for subject in self.test_subjects
                   for action in self.actions])


# ----------------------------------------------------------------------------------
# Deterministic randomness.

def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def _rng(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on the seed and the names (not on hash())."""
    return np.random.default_rng([seed] + [_name_key(name) for name in names])


# ----------------------------------------------------------------------------------
# Actions: pose and motion.

@dataclass(frozen=True)
class _Finger:
    """One extended finger (or thumb) in hand units, y pointing to the fingertips.

    base: where it leaves the palm; angle: degrees from "up", positive to the
    right; length and width in hand units.
    """
    base: Tuple[float, float]
    angle: float
    length: float
    width: float


@dataclass(frozen=True)
class _ActionStyle:
    """How an action looks and moves.

    palm: ellipse half-axes (hand units). fingers: the extended fingers.
    ring: pinch ring ``(x, y, radius, thickness)`` or None. front: discs drawn
    nearer the camera on the palm ``(x, y, radius)`` (a fist's thumb, a finger
    pointing at the camera). hand_angle: degrees the hand is turned (0: fingers
    up). motion: trajectory name (see :func:`_motion`). cycles: repetitions of
    the motion per performance. distance: hand distance (mm). length_factor:
    relative length of a performance.
    """
    palm: Tuple[float, float]
    fingers: Tuple[_Finger, ...]
    motion: str
    cycles: float = 1.0
    hand_angle: float = 0.0
    distance: float = 600.0
    ring: Optional[Tuple[float, float, float, float]] = None
    front: Tuple[Tuple[float, float, float], ...] = ()
    length_factor: float = 1.0


def _together(lengths, width=0.42, spread=1.0):
    """Four fingers side by side along the palm's top edge."""
    bases = ((-0.6, 0.85), (-0.2, 1.0), (0.2, 1.0), (0.6, 0.85))
    angles = (-4.0, -1.3, 1.3, 4.0)
    return tuple(_Finger(base, angle * spread, length, width)
                 for base, angle, length in zip(bases, angles, lengths))


_THUMB_OUT = _Finger((-0.9, 0.25), -75.0, 1.3, 0.5)

ACTION_STYLES: Dict[str, _ActionStyle] = {
    # fist with the thumb across its front, shaken
    "asl-bathroom": _ActionStyle((1.15, 1.1), (), "shake", 2, distance=620,
                                 front=((-0.1, 0.3, 0.42),), length_factor=0.9),
    # flat hand, four fingers together, no thumb, twisting
    "asl-blue": _ActionStyle((1.0, 1.15), _together((1.5, 1.7, 1.65, 1.35)),
                             "twist", 1, length_factor=1.1),
    # index and thumb parallel, hand on its side, shaken
    "asl-green": _ActionStyle((1.0, 1.1), (_Finger((0.5, 0.9), 0, 1.9, 0.45),
                                           _Finger((-0.55, 0.85), 0, 1.3, 0.45)),
                              "shake", 2, hand_angle=90, distance=610),
    # little finger only, drawing a J
    "asl-j": _ActionStyle((0.95, 1.05), (_Finger((0.7, 0.7), 12, 1.3, 0.38),),
                          "jpath", 1, distance=640, length_factor=1.2),
    # claw that opens and closes
    "asl-milk": _ActionStyle((1.05, 1.1), _together((1.1, 1.2, 1.2, 1.0), 0.45, 3.0)
                             + (_Finger((-0.95, 0.1), -60, 0.9, 0.5),),
                             "pulse", 2, length_factor=1.0),
    # index and middle finger opening and closing, hand on its side
    "asl-scissors": _ActionStyle((1.0, 1.1), (_Finger((-0.3, 1.0), -16, 1.8, 0.45),
                                              _Finger((0.3, 1.0), 16, 1.8, 0.45)),
                                 "scissor", 2, hand_angle=90, distance=590),
    # index up, wagging
    "asl-where": _ActionStyle((1.0, 1.1), (_Finger((-0.2, 1.05), 0, 2.0, 0.48),),
                              "wag", 2, distance=620, length_factor=0.9),
    # thumb and little finger spread wide, twisting
    "asl-yellow": _ActionStyle((1.0, 1.1), (_Finger((-0.85, 0.45), -80, 1.6, 0.5),
                                            _Finger((0.75, 0.75), 55, 1.7, 0.42)),
                               "twist", 2, length_factor=1.0),
    # fist with the index pointing at the camera and the thumb out, pushed forward
    "asl-you": _ActionStyle((1.05, 1.05), (_Finger((-0.9, 0.2), -80, 1.3, 0.55),),
                            "push", 1, distance=680, front=((0.1, 0.3, 0.6),),
                            length_factor=0.8),
    # index on its side, drawing a Z
    "asl-z": _ActionStyle((1.0, 1.1), (_Finger((0.0, 1.05), 0, 1.9, 0.46),),
                          "zigzag", 1, hand_angle=90, distance=610, length_factor=1.3),
    # L hand (index up, thumb out) drawing a circle
    "ui-circle": _ActionStyle((1.0, 1.1), (_Finger((0.1, 1.05), 0, 1.9, 0.46),
                                           _THUMB_OUT),
                              "circle", 1, length_factor=1.4),
    # thumb and index pinched into a ring, one tap
    "ui-click": _ActionStyle((1.0, 1.05), (), "tap", 1, distance=630,
                             ring=(-0.3, 1.55, 0.72, 0.36), length_factor=0.7),
    # OK sign (ring and three fingers), two taps
    "ui-doubleclick": _ActionStyle((1.0, 1.1),
                                   (_Finger((0.05, 1.05), 2, 1.7, 0.4),
                                    _Finger((0.4, 0.95), 18, 1.65, 0.4),
                                    _Finger((0.75, 0.7), 34, 1.4, 0.4)),
                                   "tap", 2, ring=(-0.6, 1.35, 0.55, 0.36),
                                   length_factor=1.0),
    # three spread fingers pointing down, tapping
    "ui-keyTap": _ActionStyle((1.0, 1.1), (_Finger((-0.55, 0.9), -30, 1.5, 0.45),
                                           _Finger((0.0, 1.05), 0, 1.6, 0.45),
                                           _Finger((0.55, 0.9), 30, 1.5, 0.45)),
                              "tap", 1, hand_angle=180, distance=620, length_factor=0.8),
    # flat open hand with the thumb alongside, pushed at the screen
    "ui-screenTap": _ActionStyle((1.1, 1.25), _together((1.5, 1.7, 1.65, 1.35), 0.45)
                                 + (_Finger((-1.0, 0.35), -35, 1.2, 0.5),),
                                 "push", 1, distance=610, length_factor=0.9),
    # open hand, fingers spread, swiping across
    "ui-swipe": _ActionStyle((1.0, 1.1), _together((1.5, 1.75, 1.7, 1.4), 0.4, 7.5)
                             + (_THUMB_OUT,),
                             "swipe", 1, distance=580, length_factor=1.1),
}
# Actions outside the published sixteen (a user may name any) get one of these
# styles, picked by name.
_FALLBACK_STYLES = tuple(ACTION_STYLES[name] for name in ACTIONS)


def action_style(action: str) -> _ActionStyle:
    """The pose and motion of an action (a known one, or one picked by name)."""
    if action in ACTION_STYLES:
        return ACTION_STYLES[action]
    return _FALLBACK_STYLES[_name_key(action) % len(_FALLBACK_STYLES)]


@dataclass(frozen=True)
class _Motion:
    """Offsets of the hand at one moment: position (hand units), turn (degrees),
    distance (mm), finger length and spread factors."""
    dx: float = 0.0
    dy: float = 0.0
    dangle: float = 0.0
    ddistance: float = 0.0
    extension: float = 1.0
    spread: float = 1.0


def _motion(name: str, cycles: float, phase: float) -> _Motion:
    """The hand's motion at ``phase`` in [0, 1) of a performance (y up)."""
    wave = math.sin(2 * math.pi * cycles * phase)
    if name == "shake":
        return _Motion(dx=0.9 * wave)
    if name == "twist":
        return _Motion(dangle=30 * wave)
    if name == "wag":
        return _Motion(dangle=24 * wave, dx=0.3 * wave)
    if name == "circle":
        turn = 2 * math.pi * phase
        return _Motion(dx=1.6 * math.cos(turn), dy=1.6 * math.sin(turn))
    if name == "swipe":
        return _Motion(dx=-2.6 + 5.2 * phase, dy=0.3 * math.sin(math.pi * phase))
    if name == "zigzag":
        points = ((-1.4, 1.2), (1.4, 1.2), (-1.4, -1.2), (1.4, -1.2))
        position = phase * (len(points) - 1)
        segment = min(int(position), len(points) - 2)
        along = position - segment
        (x0, y0), (x1, y1) = points[segment], points[segment + 1]
        return _Motion(dx=x0 + (x1 - x0) * along, dy=y0 + (y1 - y0) * along)
    if name == "jpath":
        if phase < 0.6:
            return _Motion(dy=1.2 - 2.2 * phase / 0.6)
        hook = (phase - 0.6) / 0.4
        return _Motion(dx=-0.9 * (1 - math.cos(math.pi * hook)),
                       dy=-1.0 - 0.5 * math.sin(math.pi * hook), dangle=45 * hook)
    if name == "pulse":
        return _Motion(extension=0.65 + 0.35 * math.cos(2 * math.pi * cycles * phase))
    if name == "scissor":
        return _Motion(spread=1.0 + 0.8 * wave)
    if name == "push":
        return _Motion(ddistance=-150 * math.sin(math.pi * phase))
    if name == "tap":
        press = abs(math.sin(math.pi * cycles * phase))
        return _Motion(dy=-0.7 * press, ddistance=-40 * press)
    raise ValueError(f"unknown motion {name!r}")


# ----------------------------------------------------------------------------------
# Subjects.

@dataclass(frozen=True)
class _Subject:
    """How one subject differs from the others (derived from name and seed)."""
    speed: float                 # > 1: slower, longer performances
    hand_scale: float            # hand size, +-15 %
    offset: Tuple[float, float]  # hand position, fraction of (width, height)
    angle: float                 # hand turn (degrees)
    amplitude: float             # motion size factor
    skin: Tuple[float, float, float]        # BGR
    background: Tuple[float, float, float]  # BGR tint
    wall_mm: float               # background distance at the frame's centre
    wall_tilt_mm: float          # background distance change top to bottom
    clutter: Tuple[Tuple[float, float, float, float, float], ...]  # x, y, w, h, mm
    depth_dropout: float         # fraction of depth pixels lost (noise)
    color_speckle: float         # fraction of colour pixels disturbed (noise)


def _subject(seed: int, name: str) -> _Subject:
    rng = _rng(seed, "subject", name)
    light, dark = np.array([175.0, 195.0, 235.0]), np.array([70.0, 105.0, 160.0])
    tone = rng.uniform(0, 1)
    clutter = tuple(
        (float(rng.uniform(0.05, 0.8)), float(rng.uniform(0.05, 0.8)),
         float(rng.uniform(0.1, 0.25)), float(rng.uniform(0.1, 0.25)),
         float(rng.uniform(1200, 1600)))
        for _ in range(int(rng.integers(1, 4))))
    return _Subject(
        speed=float(rng.uniform(0.85, 1.2)),
        hand_scale=float(rng.uniform(0.87, 1.15)),
        offset=(float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04))),
        angle=float(rng.uniform(-5, 5)),
        amplitude=float(rng.uniform(0.9, 1.1)),
        skin=tuple(float(value) for value in light + (dark - light) * tone),
        background=tuple(float(value) for value in
                         rng.uniform(70, 120) + rng.uniform(-20, 20, 3)),
        wall_mm=float(rng.uniform(1800, 2500)),
        wall_tilt_mm=float(rng.uniform(200, 500)),
        clutter=clutter,
        depth_dropout=float(rng.uniform(0.002, 0.015)),
        color_speckle=float(rng.uniform(0.002, 0.015)),
    )


# ----------------------------------------------------------------------------------
# Sequence plans: where the performances are.

@dataclass(frozen=True)
class SequencePlan:
    """One sequence to write.

    Attributes:
        split, subject, action: where it goes.
        num_frames: N, frames 0..N-1.
        intervals: ``(pos, len)`` of each performance, ascending.
    """
    split: str
    subject: str
    action: str
    num_frames: int
    intervals: Tuple[Tuple[int, int], ...]


def _fit_total(values: np.ndarray, minimums: np.ndarray, fixed: np.ndarray,
               total: int, rng: np.random.Generator) -> np.ndarray:
    """Adds or removes single frames until ``values`` sums to ``total``.

    Frames are taken from or given to the entries not ``fixed`` in a random but
    deterministic order, never below their minimum.
    """
    values = values.copy()
    movable = np.flatnonzero(~fixed)
    while True:
        diff = total - int(values.sum())
        if diff == 0:
            return values
        order = movable[rng.permutation(len(movable))]
        step = 1 if diff > 0 else -1
        changed = False
        for index in order:
            if diff == 0:
                break
            if step < 0 and values[index] <= minimums[index]:
                continue
            values[index] += step
            diff -= step
            changed = True
        if not changed:  # guarded by SyntheticConfig.fewest_frames
            raise ValueError(f"cannot fit the performances into {total} frames")


def plan_sequence(config: SyntheticConfig, split: str, subject: str, action: str,
                  shortest: bool = False) -> SequencePlan:
    """Draws where the performances of one sequence lie.

    Args:
        config: the dataset settings.
        split, subject, action: the sequence.
        shortest: make the first performance exactly ``config.min_len`` long (done
            for one sequence, so the dataset's shortest interval is min_len).

    Returns:
        The plan; intervals start after a gap, end before one, never touch.
    """
    rng = _rng(config.seed, "plan", split, subject, action)
    person = _subject(config.seed, subject)
    mean_len = (config.min_len + config.max_len) / 2
    drawn = mean_len * length_factor(config, action) * person.speed * rng.uniform(
        0.75, 1.25, config.reps)
    lengths = np.clip(np.rint(drawn), config.min_len, config.max_len).astype(np.int64)
    fixed_lengths = np.zeros(config.reps, bool)
    if shortest:
        lengths[0] = config.min_len
        fixed_lengths[0] = True
    gaps = rng.integers(config.min_gap, config.max_gap + 1, config.reps + 1)
    total = config.frames_of(split, subject, action)
    if total is not None:
        room = total - (config.reps + 1) * config.min_gap
        if lengths.sum() > room:
            # Performances too long for the frame count: shrink them, keep minimum gaps.
            scaled = np.maximum(np.rint(lengths * room / lengths.sum()), config.min_len)
            lengths = np.where(fixed_lengths, lengths, scaled).astype(np.int64)
            lengths = _fit_total(lengths, np.full(config.reps, config.min_len),
                                 fixed_lengths, room, rng)
            gaps = np.full(config.reps + 1, config.min_gap, np.int64)
        else:
            spare = total - int(lengths.sum())
            scaled = np.maximum(np.rint(gaps * spare / gaps.sum()), config.min_gap)
            gaps = _fit_total(scaled.astype(np.int64),
                              np.full(config.reps + 1, config.min_gap),
                              np.zeros(config.reps + 1, bool), spare, rng)
    intervals = []
    position = int(gaps[0])
    for length, gap in zip(lengths, gaps[1:]):
        intervals.append((position, int(length)))
        position += int(length) + int(gap)
    return SequencePlan(split, subject, action, position, tuple(intervals))


def length_factor(config: SyntheticConfig, action: str) -> float:
    """How long a performance of ``action`` is relative to the mean, in the
    config's family."""
    if config.style == "trajectory":
        from coreLib.synthetic import trajectory
        return trajectory.motion_of(action).length_factor
    return action_style(action).length_factor


def plan_dataset(config: SyntheticConfig) -> List[SequencePlan]:
    """Plans of every sequence, in generation order (the first gets the shortest
    performance)."""
    return [plan_sequence(config, split, subject, action, shortest=(index == 0))
            for index, (split, subject, action) in enumerate(config.sequences())]


# ----------------------------------------------------------------------------------
# Rendering.

def _background(config: SyntheticConfig, person: _Subject):
    """The empty scene of a subject: ``(depth (H, W) uint16 mm, confi (H, W)
    uint16, color (H, W, 3) uint8 BGR)``."""
    height, width = config.height, config.width
    rows = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    cols = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    # A wall or desk, farther towards the top of the frame.
    depth = person.wall_mm - person.wall_tilt_mm * rows + 60.0 * cols
    depth = np.broadcast_to(depth, (height, width)).copy()
    shade = 1.0 + 0.25 * rows + 0.08 * cols
    color = np.stack([np.broadcast_to(shade * tint, (height, width))
                      for tint in person.background], axis=-1)
    reflectance = np.full((height, width), 900.0, np.float32)
    for x, y, box_width, box_height, distance in person.clutter:
        if config.hand_size == "real":
            distance = distance * _REAL_CLUTTER_FACTOR
        left, top = int(x * width), int(y * height)
        right, bottom = int((x + box_width) * width), int((y + box_height) * height)
        depth[top:bottom, left:right] = distance
        color[top:bottom, left:right] *= 0.85
        reflectance[top:bottom, left:right] = 700.0
    confi = reflectance * (1000.0 / depth) ** 2
    return (np.rint(depth).astype(np.uint16), np.rint(confi).astype(np.uint16),
            np.clip(np.rint(color), 0, 255).astype(np.uint8))


def _hand_values(person: _Subject, distance: float, brightness: float):
    """Depth, IR return and BGR colour of a hand part at ``distance`` mm."""
    confi = 1400.0 * (1000.0 / distance) ** 2
    shade = min(1.3, max(0.7, 1.0 + (_REFERENCE_DISTANCE_MM - distance) / 800.0))
    color = tuple(int(min(255, round(channel * shade * brightness)))
                  for channel in person.skin)
    return int(round(distance)), int(round(confi)), color


def hand_canvas(images, center_x: float, center_y: float, unit: float, angle: float):
    """The two drawing helpers of one hand, shared by both families.

    Args:
        images: ``(depth, confi, color)`` arrays drawn into in place.
        center_x, center_y: the palm centre in pixels.
        unit: pixels per hand unit.
        angle: the hand's turn in radians (counter-clockwise on screen).

    Returns:
        ``(to_image, paint)``: ``to_image(x, y)`` maps hand units (y up) to cv2's
        fixed-point image coordinates (y down); ``paint(values, draw)`` calls
        ``draw(image, value)`` once per modality with that modality's value.
    """
    cos_a, sin_a = math.cos(angle), math.sin(angle)

    def to_image(x: float, y: float) -> Tuple[int, int]:
        image_x = center_x + unit * (x * cos_a - y * sin_a)
        image_y = center_y - unit * (x * sin_a + y * cos_a)
        return int(round(image_x * _SUBPIXEL)), int(round(image_y * _SUBPIXEL))

    def paint(values, draw):
        for image, value in zip(images, values):
            draw(image, value if isinstance(value, tuple) else (value,))

    return to_image, paint


def real_hand_unit(config: SyntheticConfig, distance_mm: float) -> float:
    """Pixels per hand unit of the ``real`` camera model at a distance: the focal
    length (from the frame width and the field of view) times the unit's size
    over the distance."""
    focal = (config.width / 2.0) / math.tan(math.radians(_REAL_FIELD_OF_VIEW_DEG) / 2.0)
    return focal * _REAL_HAND_UNIT_MM / distance_mm


def _placement(config: SyntheticConfig, person: _Subject, performance: Dict[str, float],
               distance: float) -> Tuple[float, float, float, float]:
    """``(distance, unit, center_x, center_y)`` of a pose-family hand before its
    motion: the large drawing, or the ``real`` camera model."""
    if config.hand_size == "real":
        distance -= _REAL_ARM_SHIFT_MM
        unit = real_hand_unit(config, distance) * person.hand_scale * performance["scale"]
        spread = _REAL_POSITION_SPREAD
        return (distance, unit,
                config.width * (0.5 + spread * (person.offset[0] + performance["dx"])),
                config.height * (0.52 + spread * (person.offset[1] + performance["dy"])))
    unit = (0.13 * config.height * config.hand_scale * person.hand_scale
            * performance["scale"]
            * _REFERENCE_DISTANCE_MM / distance)
    center_x = config.width * (0.5 + person.offset[0] + performance["dx"])
    center_y = config.height * (0.52 + person.offset[1] + performance["dy"])
    # A larger hand's palm sits lower: raised fingers reach about 2.5 hand units
    # above the palm centre and the palm 1.1 below, so without this shift the
    # fingertips of a scaled hand leave the top of the frame. No shift at scale 1.
    center_y += _SCALED_HAND_DROP * (config.hand_scale - 1) * 0.13 * config.height
    return distance, unit, center_x, center_y


def _draw_hand(images, config: SyntheticConfig, person: _Subject, style: _ActionStyle,
               performance: Dict[str, float], phase: float) -> None:
    """Draws the hand of one frame into ``(depth, confi, color)`` in place."""
    motion = _motion(style.motion, style.cycles, phase)
    distance, unit, center_x, center_y = _placement(
        config, person, performance, style.distance + motion.ddistance)
    # The motion is measured in the hand units of an unscaled hand, so a larger
    # hand (config.hand_scale) moves along the same path.
    amplitude = person.amplitude * performance["amplitude"] / config.hand_scale
    center_x += motion.dx * amplitude * unit
    center_y -= motion.dy * amplitude * unit
    angle = math.radians(style.hand_angle + person.angle + performance["angle"]
                         + motion.dangle)
    to_image, paint = hand_canvas(images, center_x, center_y, unit, angle)

    finger_values = _hand_values(person, distance + 15, 1.06)
    for finger in style.fingers:
        finger_angle = math.radians(finger.angle * motion.spread)
        length = finger.length * motion.extension
        direction = (math.sin(finger_angle), math.cos(finger_angle))
        start = to_image(finger.base[0] - 0.3 * direction[0],
                         finger.base[1] - 0.3 * direction[1])
        tip = to_image(finger.base[0] + length * direction[0],
                       finger.base[1] + length * direction[1])
        thickness = max(1, int(round(finger.width * unit)))
        paint(finger_values, lambda image, value: cv2.line(
            image, start, tip, value, thickness, cv2.LINE_8, _SUBPIXEL_BITS))
    if style.ring is not None:
        ring_x, ring_y, radius, ring_width = style.ring
        center = to_image(ring_x, ring_y)
        thickness = max(1, int(round(ring_width * unit)))
        ring_radius = int(round(radius * unit * _SUBPIXEL))
        paint(finger_values, lambda image, value: cv2.circle(
            image, center, ring_radius, value, thickness, cv2.LINE_8, _SUBPIXEL_BITS))
    palm_center = to_image(0.0, 0.0)
    axes = (int(round(style.palm[0] * unit * _SUBPIXEL)),
            int(round(style.palm[1] * unit * _SUBPIXEL)))
    palm_angle = -math.degrees(angle)  # cv2 turns clockwise on screen
    paint(_hand_values(person, distance, 1.0), lambda image, value: cv2.ellipse(
        image, palm_center, axes, palm_angle, 0, 360, value, -1, cv2.LINE_8,
        _SUBPIXEL_BITS))
    front_values = _hand_values(person, distance - 40, 1.12)
    for front_x, front_y, radius in style.front:
        center = to_image(front_x, front_y)
        disc_radius = int(round(radius * unit * _SUBPIXEL))
        paint(front_values, lambda image, value: cv2.circle(
            image, center, disc_radius, value, -1, cv2.LINE_8, _SUBPIXEL_BITS))


def _add_noise(depth: np.ndarray, confi: np.ndarray, color: np.ndarray,
               person: _Subject, rng: np.random.Generator) -> None:
    """Sensor noise as sparse dropouts and speckles (dense noise would make every
    PNG several times larger and slower to write)."""
    pixels = depth.size
    lost = rng.integers(0, pixels, int(pixels * person.depth_dropout))
    depth.reshape(-1)[lost] = 0
    confi.reshape(-1)[lost] = rng.integers(0, 40, len(lost)).astype(np.uint16)
    speckled = rng.integers(0, pixels, int(pixels * person.color_speckle))
    flat = color.reshape(-1, 3)
    change = rng.integers(-12, 13, (len(speckled), 1))
    flat[speckled] = np.clip(flat[speckled].astype(np.int16) + change, 0, 255)


def render_sequence(config: SyntheticConfig, plan: SequencePlan):
    """Yields the frames of one sequence.

    Yields:
        ``(depth, confi, color)`` per frame: ``(H, W) uint16`` millimetres,
        ``(H, W) uint16`` IR return, ``(H, W, 3) uint8`` BGR.
    """
    rng = _rng(config.seed, "frames", plan.split, plan.subject, plan.action)
    return render_frames(config, plan.subject, plan.num_frames, plan.intervals,
                         (plan.action,) * len(plan.intervals), rng)


def render_frames(config: SyntheticConfig, subject: str, num_frames: int,
                  intervals: Sequence[Tuple[int, int]], actions: Sequence[str],
                  rng: np.random.Generator):
    """Yields the frames of a subject performing ``actions[k]`` in ``intervals[k]``,
    in the config's family (frames outside every interval show no hand).

    Yields:
        ``(depth, confi, color)`` as :func:`render_sequence`.
    """
    if config.style == "trajectory":
        from coreLib.synthetic import trajectory
        yield from trajectory.render_frames(config, subject, num_frames,
                                                      intervals, actions, rng)
        return
    person = _subject(config.seed, subject)
    styles = [action_style(action) for action in actions]
    performances = [dict(scale=float(rng.uniform(0.95, 1.05)),
                         amplitude=float(rng.uniform(0.9, 1.1)),
                         dx=float(rng.uniform(-0.02, 0.02)),
                         dy=float(rng.uniform(-0.02, 0.02)),
                         angle=float(rng.uniform(-4, 4)))
                    for _ in intervals]
    for images, index, phase in performance_frames(config, person, num_frames, intervals):
        if index >= 0:
            _draw_hand(images, config, person, styles[index], performances[index], phase)
        _add_noise(*images, person, rng)
        yield images


# ----------------------------------------------------------------------------------
# Files.

def performance_frames(config: SyntheticConfig, person, num_frames: int,
                       intervals: Sequence[Tuple[int, int]]):
    """The frames of one sequence before the hand is drawn, for both families.

    Yields:
        ``((depth, confi, color), index, phase)`` per frame: fresh copies of the
        subject's background, the performance the frame lies in (-1: no action)
        and how far into it (0 to 1, at the frame's middle).
    """
    frame_performance = np.full(num_frames, -1)
    for index, (pos, length) in enumerate(intervals):
        frame_performance[pos:pos + length] = index
    background = _background(config, person)
    for frame in range(num_frames):
        images = tuple(image.copy() for image in background)
        index = int(frame_performance[frame])
        phase = 0.0
        if index >= 0:
            pos, length = intervals[index]
            phase = (frame - pos + 0.5) / length
        yield images, index, phase


def label_xml(intervals: Sequence[Tuple[int, int]]) -> str:
    """The label file of a sequence, as OpenCV's FileStorage writes it."""
    return labels.label_file_xml(intervals)


def _encode_png(image: np.ndarray, path: str) -> bytes:
    ok, data = cv2.imencode(".png", image, PNG_PARAMS)
    if not ok:
        raise ActrecogError(f"{path}: PNG encoding failed")
    return data.tobytes()


def write_frames(frame_dir: str, frames) -> None:
    """Writes ``(depth, confi, color)`` frames as ``<modality>_<i>.png``."""
    os.makedirs(frame_dir, exist_ok=True)
    for index, images in enumerate(frames):
        for modality, image in zip(("depth", "confi", "color"), images):
            path = os.path.join(frame_dir, f"{modality}_{index}.png")
            with open(path, "wb") as handle:
                handle.write(_encode_png(image, path))


def write_sequence(dest: str, config: SyntheticConfig, plan: SequencePlan) -> int:
    """Renders and writes one sequence; the label file comes last, so a label
    file means its frames are complete. Returns the number of frames."""
    subject_dir = os.path.join(dest, plan.split, plan.subject)
    write_frames(os.path.join(subject_dir, plan.action), render_sequence(config, plan))
    labels.write_label_file(os.path.join(subject_dir, f"{plan.action}.xml"), plan.intervals)
    return plan.num_frames


def _write_task(task) -> Tuple[str, int]:
    dest, config, plan = task
    if not isinstance(plan, SequencePlan):  # a TestDetection sequence
        from coreLib.synthetic import detection
        return DETECTION_SPLIT, detection.write_detection_sequence(dest, config,
                                                                             plan)
    return plan.split, write_sequence(dest, config, plan)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one sequence per process; no nested thread pools


def _prepare_dest(dest: str, overwrite: bool) -> None:
    """Checks ``dest`` and clears the splits an ``overwrite`` replaces.

    Raises:
        ActrecogError: a URI, not a folder, not writable, or holding a split
            without ``overwrite``.
    """
    if "://" in dest:
        raise ActrecogError(f"{dest}: the generator writes local folders only")
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise ActrecogError(f"{dest}: exists and is not a folder")
    existing = [split for split in SPLITS + (DETECTION_SPLIT,)
                if os.path.exists(os.path.join(dest, split))]
    if existing and not overwrite:
        raise ActrecogError(f"{dest}: already holds {' and '.join(existing)}/ "
                            "(use --overwrite to replace)")
    try:
        os.makedirs(dest, exist_ok=True)
        for split in existing:
            shutil.rmtree(os.path.join(dest, split))
        probe = os.path.join(dest, f".write-probe.tmp-{os.getpid()}")
        with open(probe, "wb") as handle:
            handle.write(b"ok")
        os.remove(probe)
    except OSError as error:
        raise ActrecogError(f"{dest}: not writable ({error.strerror or error})") from None


def _run_tasks(tasks: list, workers: int, progress: bool):
    """Yields ``(split, frames written)`` per sequence task, in completion order."""
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks), unit="seq", desc="synthetic", file=sys.stderr)
    pool = None
    try:
        if workers == 1 or len(tasks) == 1:
            results = map(_write_task, tasks)
        else:
            # spawn: the parent may have TensorFlow loaded, whose threads do not
            # survive a fork safely; the workers only need numpy and cv2.
            pool = multiprocessing.get_context("spawn").Pool(min(workers, len(tasks)),
                                                             initializer=_init_worker)
            results = pool.imap_unordered(_write_task, tasks)
        for result in results:
            yield result
            if bar is not None:
                bar.update(1)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if bar is not None:
            bar.close()


def generate_dataset(dest: str, config: SyntheticConfig, workers: int = 1,
                     progress: bool = True, overwrite: bool = False) -> dict:
    """Writes a synthetic dataset in the BII layout under ``dest``.

    Args:
        dest: a local folder (created if needed).
        config: what to generate.
        workers: processes rendering sequences in parallel (the output does not
            depend on it).
        progress: show a tqdm bar over sequences on stderr.
        overwrite: replace existing ``dest/Train``, ``dest/Test`` and
            ``dest/TestDetection`` folders.

    Returns:
        Summary: ``{"splits": {split: {"sequences", "frames", "performances"}},
        "sequences", "frames", "min_len", "seconds"}``.

    Raises:
        ActrecogError: ``dest`` is a remote URI, not a folder, not writable, or
            already holds Train/, Test/ or TestDetection/ without ``overwrite``.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ActrecogError(f"workers must be a positive integer, got {workers!r}")
    _prepare_dest(dest, overwrite)
    started = time.perf_counter()
    from coreLib.synthetic import detection
    plans = plan_dataset(config)
    detection_plans = detection.plan_detection(config)
    summary = {split: {"sequences": 0, "frames": 0, "performances": 0}
               for split in SPLITS + (DETECTION_SPLIT,)}
    for plan in plans:
        summary[plan.split]["sequences"] += 1
        summary[plan.split]["performances"] += len(plan.intervals)
    for plan in detection_plans:
        summary[DETECTION_SPLIT]["sequences"] += 1
        summary[DETECTION_SPLIT]["performances"] += len(plan.intervals)
    # The long TestDetection sequences first, so that they do not finish alone.
    tasks = [(dest, config, plan) for plan in detection_plans + plans]
    for split, frames in _run_tasks(tasks, workers, progress):
        summary[split]["frames"] += frames
    splits = {split: counts for split, counts in summary.items() if counts["sequences"]}
    return {
        "splits": splits,
        "sequences": sum(counts["sequences"] for counts in splits.values()),
        "frames": sum(counts["frames"] for counts in splits.values()),
        "min_len": min(length for plan in plans for _, length in plan.intervals),
        "seconds": round(time.perf_counter() - started, 3),
    }


# ----------------------------------------------------------------------------------
# The size of the published dataset.

def _apportion(total: int, weights: Sequence[float]) -> List[int]:
    """Splits ``total`` into integers proportional to ``weights`` (largest
    remainder), summing exactly to ``total``."""
    weights = np.asarray(weights, np.float64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    remainders = exact - counts
    for index in np.argsort(-remainders, kind="stable")[:total - int(counts.sum())]:
        counts[index] += 1
    return [int(count) for count in counts]


def full_size_config(seed: int = 0, width: int = 320, height: int = 240,
                     reps: int = FULL_SIZE_REPS, style: str = "pose",
                     detection: bool = True) -> SyntheticConfig:
    """A dataset the size of the published one.

    288 sequences (15 train and 3 test subjects, 16 actions); 112,640 Train
    frames with per-action totals from 5,547 to 8,667, and 22,025 Test frames
    (alvin 8,239, etienne 6,119, xiaowei 7,667). Within those totals a subject's
    sequences are longer the slower the subject. With ``detection``, the
    published TestDetection split's shape: 10 sequences, 19,537 frames, 139
    performances (:func:`coreLib.synthetic.detection.full_size_detection_plan`).

    Returns:
        The config, with every sequence's frame count in ``sequence_frames``.
    """
    low, high = FULL_SIZE_ACTION_FRAMES_RANGE
    count = len(ACTIONS)
    # Per-action train totals: the published extremes, the rest spread between
    # them; a fixed interleaving so that neighbouring actions differ.
    middle = _apportion(FULL_SIZE_TRAIN_FRAMES - low - high,
                        np.linspace(low, high, count)[1:-1])
    action_totals = [low] + middle + [high]
    order = [(index * 7) % count for index in range(count)]
    per_action = {ACTIONS[position]: action_totals[rank]
                  for rank, position in enumerate(order)}
    speeds = [_subject(seed, subject).speed for subject in TRAIN_SUBJECTS]
    sequence_frames = []
    for action in ACTIONS:
        for subject, frames in zip(TRAIN_SUBJECTS, _apportion(per_action[action], speeds)):
            sequence_frames.append((subject, action, frames))
    action_weights = [per_action[action] for action in ACTIONS]
    for subject in TEST_SUBJECTS:
        counts = _apportion(FULL_SIZE_TEST_FRAMES[subject], action_weights)
        sequence_frames.extend((subject, action, frames)
                               for action, frames in zip(ACTIONS, counts))
    from coreLib.synthetic import detection as detection_split
    return SyntheticConfig(seed=seed, width=width, height=height, reps=reps,
                           max_len=FULL_SIZE_MAX_LEN, min_gap=4, max_gap=40,
                           sequence_frames=tuple(sequence_frames), style=style,
                           detection_sequences=0,
                           detection_plan=(detection_split.full_size_detection_plan()
                                           if detection else ()))


# ----------------------------------------------------------------------------------
# Command line.

def _parse_size(text: str) -> Tuple[int, int]:
    import argparse
    parts = text.lower().split("x")
    try:
        width, height = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if width < _SIZE_MIN or height < _SIZE_MIN:
        raise argparse.ArgumentTypeError(f"{text!r}: both sides must be >= {_SIZE_MIN}")
    return width, height


def _names(text: str) -> Tuple[str, ...]:
    """A comma- or space-separated list of names ('' for none)."""
    return tuple(name for name in text.replace(",", " ").split() if name)


def build_parser():
    from coreLib.cli import make_parser, non_negative_int, positive_int
    parser = make_parser(
        "python -m coreLib.synthetic",
        "Writes a synthetic hand-action dataset in the BII layout:\n"
        "DEST/{Train,Test}/<subject>/<action>.xml and "
        "<action>/{depth,confi,color}_<i>.png,\n"
        "DEST/TestDetection/<name>.xml and <name>/{depth,confi,color}_<i>.png.")
    parser.add_argument("dest", help="folder to write Train/, Test/ and TestDetection/ into")
    parser.add_argument("--train-subjects", type=_names, default=" ".join(TRAIN_SUBJECTS),
                        help="Train subject names, comma or space separated "
                             "('' for none)")
    parser.add_argument("--test-subjects", type=_names, default=" ".join(TEST_SUBJECTS),
                        help="Test subject names, comma or space separated "
                             "('' for none)")
    parser.add_argument("--actions", type=_names, default=" ".join(ACTIONS),
                        help="action names, comma or space separated")
    parser.add_argument("--size", type=_parse_size, default="320x240",
                        help="frame size WIDTHxHEIGHT")
    parser.add_argument("--reps", type=positive_int, default=None,
                        help=f"performances of the action per sequence; when not "
                             f"given {SyntheticConfig.reps}, or {FULL_SIZE_REPS} with "
                             "--full-size")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of every random choice")
    parser.add_argument("--min-len", type=positive_int, default=SyntheticConfig.min_len,
                        help="shortest performance in frames (exactly one "
                             "performance has this length)")
    parser.add_argument("--max-len", type=positive_int, default=SyntheticConfig.max_len,
                        help="longest performance in frames")
    parser.add_argument("--min-gap", type=positive_int, default=SyntheticConfig.min_gap,
                        help="fewest no-action frames around each performance")
    parser.add_argument("--max-gap", type=positive_int, default=SyntheticConfig.max_gap,
                        help="most no-action frames drawn for a gap")
    parser.add_argument("--frames-per-sequence", type=positive_int, default=None,
                        help="exact frames of every Train sequence (default: drawn "
                             "from the performance and gap lengths)")
    parser.add_argument("--test-frames-per-sequence", type=positive_int, default=None,
                        help="exact frames of every Test sequence (default: as "
                             "--frames-per-sequence)")
    parser.add_argument("--hand-scale", type=float, default=SyntheticConfig.hand_scale,
                        help="draw every hand this much larger (0.25 to 4), as if "
                             "closer to the camera")
    parser.add_argument("--hand-size", choices=HAND_SIZES, default=SyntheticConfig.hand_size,
                        help="large: hands drawn larger than life (1.0.x); real: a "
                             "head-worn camera model, hands at arm's length (430-530 mm), "
                             "40-60 pixels of a 320x240 frame, anywhere in the middle "
                             "of the view")
    parser.add_argument("--style", choices=STYLES, default=SyntheticConfig.style,
                        help="pose: each action its own hand pose and motion; "
                             "trajectory: one hand shape, each action its own motion")
    parser.add_argument("--detection-sequences", type=non_negative_int,
                        default=SyntheticConfig.detection_sequences,
                        help=f"long TestDetection sequences of unseen subjects, each "
                             f"with performances of different actions (0 to "
                             f"{MAX_DETECTION_SEQUENCES}; 0: no TestDetection/)")
    parser.add_argument("--detection-frames", type=positive_int,
                        default=SyntheticConfig.detection_frames,
                        help="frames of each TestDetection sequence")
    parser.add_argument("--detection-performances", type=positive_int,
                        default=SyntheticConfig.detection_performances,
                        help="performances in each TestDetection sequence")
    parser.add_argument("--full-size", action="store_true",
                        help="the size of the published dataset: all 18 subjects "
                             "and 16 actions, 134,665 frames, and TestDetection's 10 "
                             "sequences of 19,537 frames (only --size, --seed, "
                             "--reps, --style apply; --detection-sequences 0 leaves "
                             "TestDetection out)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help="processes rendering sequences in parallel")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace DEST/Train and DEST/Test if they exist")
    return parser


def main(argv=None) -> int:
    """The command line: parse, build the config, generate, print a summary."""
    args = build_parser().parse_args(argv)
    width, height = args.size
    try:
        if args.full_size:
            config = full_size_config(seed=args.seed, width=width, height=height,
                                      reps=args.reps or FULL_SIZE_REPS, style=args.style,
                                      detection=args.detection_sequences > 0)
        else:
            config = SyntheticConfig(
                train_subjects=args.train_subjects, test_subjects=args.test_subjects,
                actions=args.actions, width=width, height=height,
                reps=args.reps or SyntheticConfig.reps,
                seed=args.seed, min_len=args.min_len, max_len=args.max_len,
                min_gap=args.min_gap, max_gap=args.max_gap,
                frames_per_sequence=args.frames_per_sequence,
                test_frames_per_sequence=args.test_frames_per_sequence,
                hand_scale=args.hand_scale, style=args.style, hand_size=args.hand_size,
                detection_sequences=args.detection_sequences,
                detection_frames=args.detection_frames,
                detection_performances=args.detection_performances)
    except ValueError as error:
        raise ActrecogError(str(error)) from None
    summary = generate_dataset(args.dest, config, workers=args.workers,
                               progress=True, overwrite=args.overwrite)
    parts = [f"{split} {counts['sequences']} sequences / {counts['frames']} frames"
             for split, counts in summary["splits"].items()]
    print(f"synthetic: {args.dest}: {', '.join(parts)}; {width}x{height}; {args.style}; "
          f"shortest performance {summary['min_len']} frames; {summary['seconds']:.1f} s")
    return 0
