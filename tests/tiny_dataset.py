"""Raw BII-layout source datasets (SRC/Train, SRC/Test) of a few tiny frames.

One writer, :func:`write_source`, lays out label files and frame PNGs exactly as
the dataset stores them (colour 8-bit 3-channel, depth/confi 16-bit 1-channel);
two painters fill the frames:

- :func:`make_dataset`: a hand-made layout (edge cases of the window rule) of
  small random frames, so every frame differs - the preprocessing tests.
- :func:`write_tiny_source`: two Train subjects, one Test subject, two actions,
  frames that vary smoothly by action, frame and subject - the script runs
  (tests/tool_runner.py's tiny pipeline, the kill tests, the bad-input table).
"""

import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterable

import cv2
import numpy as np

from coreLib.data import labels

MODALITIES = ("color", "depth", "confi")
FRAME_WIDTH = 12
FRAME_HEIGHT = 10

# split -> subject -> action -> (number of frames, [(pos, len), ...])
# Edge cases: an interval at frame 0, one ending at the last frame, two
# intervals two frames apart; the shortest len is 4 (L = 4 by default).
DEFAULT_LAYOUT = {
    "Train": {
        "LN": {"act-a": (14, [(0, 4), (9, 5)]),
               "act-b": (12, [(3, 4), (8, 4)])},
        "ann": {"act-a": (16, [(2, 5), (9, 7)]),
                "act-b": (13, [(0, 6)])},
        "bob": {"act-a": (15, [(5, 4)]),
                "act-b": (11, [(6, 5)])},
    },
    "Test": {
        "zed": {"act-a": (10, [(0, 4)]),
                "act-b": (9, [(4, 5)])},
    },
}


@dataclass(frozen=True)
class Sequence:
    """One sequence of a layout: its place and its numbers in writing order."""
    split: str
    subject: str
    action: str
    num_frames: int
    number: int            # sequences written before it
    subject_number: int    # subjects (of all splits) before its subject
    action_number: int     # actions of its subject before it


# A painter: the frames of a sequence, each {modality: image as cv2 writes it}.
Painter = Callable[[Sequence], Iterable[Dict[str, np.ndarray]]]


def write_source(root: str, layout, paint: Painter, modalities=MODALITIES,
                 container: Callable[[Sequence], str] = lambda sequence: "label") -> str:
    """Writes ``root/<split>/<subject>/<action>.xml`` and the frames
    ``<action>/<modality>_<i>.png`` of every sequence of ``layout``; returns ``root``.

    Args:
        layout: split -> subject -> action -> ``(frames, [(pos, len), ...])``.
        paint: the frames of a sequence (see :data:`Painter`).
        modalities: which of each frame's images are written.
        container: the label file's element around its items, per sequence.
    """
    number = 0
    subject_number = 0
    for split, subjects in layout.items():
        for subject, actions in subjects.items():
            subject_dir = os.path.join(root, split, subject)
            os.makedirs(subject_dir, exist_ok=True)
            for action_number, (action, (num_frames, intervals)) in enumerate(actions.items()):
                sequence = Sequence(split, subject, action, num_frames, number,
                                    subject_number, action_number)
                labels.write_label_file(os.path.join(subject_dir, action + ".xml"),
                                        intervals, container(sequence))
                folder = os.path.join(subject_dir, action)
                os.makedirs(folder, exist_ok=True)
                for index, images in enumerate(paint(sequence)):
                    for name in modalities:
                        assert cv2.imwrite(os.path.join(folder, f"{name}_{index}.png"),
                                           images[name])
                number += 1
            subject_number += 1
    return root


# ---------------------------------------------------------------------------
# The hand-made layout of random frames.

def random_painter(width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT) -> Painter:
    """Random frames, seeded by the sequence's number (every frame differs)."""
    def paint(sequence: Sequence):
        rng = np.random.default_rng(sequence.number)
        for _ in range(sequence.num_frames):
            yield {"color": rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                   "depth": rng.integers(0, 65536, (height, width), dtype=np.uint16),
                   "confi": rng.integers(0, 65536, (height, width), dtype=np.uint16)}
    return paint


def make_dataset(root: str, layout=None, width: int = FRAME_WIDTH,
                 height: int = FRAME_HEIGHT, modalities=MODALITIES) -> str:
    """Writes ``layout`` (default :data:`DEFAULT_LAYOUT`) of random frames under
    ``root``; label containers vary (``seq0``..``seq2``) as real files' do."""
    return write_source(root, DEFAULT_LAYOUT if layout is None else layout,
                        random_painter(width, height), modalities,
                        container=lambda sequence: f"seq{sequence.number % 3}")


# ---------------------------------------------------------------------------
# The tiny source of the script runs.

TINY_TRAIN_SUBJECTS = ("aiyang", "LN")
TINY_TEST_SUBJECTS = ("alvin",)
TINY_ACTIONS = ("asl-blue", "ui-click")
TINY_FRAMES = 12
TINY_SIZE = (12, 16)  # (H, W)


def tiny_intervals(subject_number: int, action_number: int, frames: int = TINY_FRAMES):
    """Two performances per 12 frames, the shortest len (4) occurring everywhere."""
    first = 1 + (subject_number + action_number) % 2
    intervals = []
    for block in range(0, frames - TINY_FRAMES + 1, TINY_FRAMES):
        intervals += [(block + first, 4 + action_number), (block + first + 6, 4)]
    return intervals


def tiny_frame(modality: str, action_number: int, index: int, subject_number: int,
               size=TINY_SIZE):
    """Frames that differ by action, frame and subject (so windows differ); colour
    in RGB order."""
    height, width = size
    rows, columns = np.mgrid[0:height, 0:width]
    base = (rows * (3 + action_number) + columns * (2 + subject_number) + 7 * index) % 97
    if modality == "color":
        return np.stack([base * 2, base + 60 * action_number, 255 - base * 2],
                        axis=-1).astype(np.uint8)
    return (base * 500 + 1000 * (modality == "confi")).astype(np.uint16)


def tiny_layout(frames: int = TINY_FRAMES):
    """The tiny source's layout: every subject has every action."""
    subjects = ([("Train", name) for name in TINY_TRAIN_SUBJECTS]
                + [("Test", name) for name in TINY_TEST_SUBJECTS])
    layout = {}
    for subject_number, (split, subject) in enumerate(subjects):
        layout.setdefault(split, {})[subject] = {
            action: (frames, tiny_intervals(subject_number, action_number, frames))
            for action_number, action in enumerate(TINY_ACTIONS)}
    return layout


def write_tiny_source(root: str, frames: int = TINY_FRAMES, size=TINY_SIZE) -> str:
    """Writes ``root/Train`` and ``root/Test`` (by default 12 frames of 16x12 per
    sequence; ``frames`` a multiple of 12), all three modalities; returns ``root``."""
    def paint(sequence: Sequence):
        for index in range(sequence.num_frames):
            images = {modality: tiny_frame(modality, sequence.action_number, index,
                                           sequence.subject_number, size)
                      for modality in MODALITIES}
            images["color"] = images["color"][:, :, ::-1]  # cv2 writes BGR
            yield images
    return write_source(root, tiny_layout(frames), paint)
