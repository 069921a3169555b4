"""Hand-made BII-layout datasets of a few tiny frames, for the preprocessing tests.

Frames are small random images (so every frame differs), written with cv2 exactly
as the dataset stores them: color 8-bit 3-channel, depth/confi 16-bit 1-channel.
"""

import os

import cv2
import numpy as np

from coreLib.data import labels

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


def label_xml(intervals, container: str = "label") -> str:
    """An OpenCV FileStorage label file with one ``<_>`` item per interval."""
    return labels.label_file_xml(intervals, container)


def write_sequence(folder: str, num_frames: int, seed: int, width: int = FRAME_WIDTH,
                   height: int = FRAME_HEIGHT,
                   modalities=("color", "depth", "confi")) -> None:
    """Writes frames 0..num_frames-1 of each modality into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(num_frames):
        images = {
            "color": rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
            "depth": rng.integers(0, 65536, (height, width), dtype=np.uint16),
            "confi": rng.integers(0, 65536, (height, width), dtype=np.uint16),
        }
        for name in modalities:
            assert cv2.imwrite(os.path.join(folder, f"{name}_{index}.png"), images[name])


def make_dataset(root: str, layout=None, **frame_options) -> str:
    """Writes a dataset in the BII layout under ``root``; returns ``root``.

    Args:
        root: the SRC folder to create.
        layout: split -> subject -> action -> (frames, [(pos, len), ...]);
            default :data:`DEFAULT_LAYOUT`.
        frame_options: ``width``, ``height``, ``modalities`` for write_sequence.
    """
    layout = DEFAULT_LAYOUT if layout is None else layout
    seed = 0
    for split, subjects in layout.items():
        for subject, actions in subjects.items():
            subject_dir = os.path.join(root, split, subject)
            os.makedirs(subject_dir, exist_ok=True)
            for action, (num_frames, intervals) in actions.items():
                with open(os.path.join(subject_dir, f"{action}.xml"), "w") as handle:
                    handle.write(label_xml(intervals, container=f"seq{seed % 3}"))
                write_sequence(os.path.join(subject_dir, action), num_frames, seed,
                               **frame_options)
                seed += 1
    return root
