"""What the synthetic generator makes: the published names and sizes, and the config.

:class:`SyntheticConfig` says which subjects, actions, frame size, lengths, family
(``style``) and TestDetection sequences a dataset has; it checks itself on
construction (ValueError naming the field). The TestDetection names of the
published split live here too, because the config refuses a detection sequence
whose subject is a Train or Test subject.
"""

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from coreLib.data import action_sets

TRAIN_SUBJECTS = ("aiyang", "ashwin", "biru", "chi", "chris", "gulin", "justin",
                  "lakshmi", "LN", "malay", "marc", "michael", "xuchi", "yizhou",
                  "yongzhong")
TEST_SUBJECTS = ("alvin", "etienne", "xiaowei")
ACTIONS = action_sets.BII_ACTIONS
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

# The published TestDetection split: sequence names and frame counts (19,537 frames),
# and its 139 performances.
FULL_SIZE_DETECTION_FRAMES = (
    ("alvin_test", 1064), ("connie", 1894), ("dale0", 2386), ("dale1", 2455),
    ("lam", 2313), ("nguyen", 1634), ("prashanth", 1432), ("vishnu", 2503),
    ("xiaowei_test", 1727), ("zhaohe", 2129))
FULL_SIZE_DETECTION_PERFORMANCES = 139
DETECTION_NAMES = tuple(name for name, _ in FULL_SIZE_DETECTION_FRAMES)
# Performances per published-size sequence.
DETECTION_PERFORMANCES_RANGE = (10, 20)

SIZE_MIN = 16  # the smallest frame side


def detection_subject(name: str) -> str:
    """The subject of a TestDetection sequence: its name without trailing digits."""
    return re.sub(r"\d+$", "", name) or name


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
            camera model (:func:`coreLib.synthetic.drawing.real_hand_unit`) puts
            the hand at arm's length, 40-60 pixels of a 320x240 frame, anywhere in the lower
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
        self._check_names()
        self._check_numbers()
        self._check_sequence_frames()
        self._check_detection()

    def _check_names(self) -> None:
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

    def _check_numbers(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < SIZE_MIN:
                raise ValueError(f"{name} must be an integer >= {SIZE_MIN}, got {value!r}")
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

    def _check_sequence_frames(self) -> None:
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

    def _check_detection(self) -> None:
        for name in ("detection_sequences", "detection_frames", "detection_performances"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.detection_sequences > MAX_DETECTION_SEQUENCES:
            raise ValueError(f"detection_sequences must be at most "
                             f"{MAX_DETECTION_SEQUENCES}, got {self.detection_sequences}")
        names = []
        for entry in self.detection_entries():
            if len(entry) != 3:
                raise ValueError(f"detection_plan entry {entry!r} is not "
                                 "(name, frames, performances)")
            name, frames, performances = entry
            if (not isinstance(name, str) or not name or name in (".", "..")
                    or "/" in name or "\\" in name):
                raise ValueError(f"bad detection sequence name {name!r}")
            subject = detection_subject(name)
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
        names = DETECTION_NAMES[:self.detection_sequences]
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
