"""Rendering a planned Train/Test sequence and writing frames and label files.

A sequence's frames are ``<modality>_<i>.png`` in its folder; its label file is
written last, so a label file means its frames are complete. PNG settings are
chosen for speed (the images are smooth and compress well without filtering).
"""

import os
from typing import Sequence, Tuple

import cv2
import numpy as np

from coreLib.data import labels
from coreLib.errors import ActrecogError
from coreLib.synthetic.config import SyntheticConfig
from coreLib.synthetic.families import family_of
from coreLib.synthetic.plans import SequencePlan
from coreLib.synthetic.randomness import seeded_rng

PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
# Smooth synthetic images compress about as well without PNG's adaptive filter
# choice, which costs several times more per frame.
if hasattr(cv2, "IMWRITE_PNG_FILTER") and hasattr(cv2, "IMWRITE_PNG_FILTER_NONE"):
    PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
MODALITIES = ("depth", "confi", "color")


def render_sequence(config: SyntheticConfig, plan: SequencePlan):
    """Yields the frames of one sequence, in the config's family.

    Yields:
        ``(depth, confi, color)`` per frame: ``(H, W) uint16`` millimetres,
        ``(H, W) uint16`` IR return, ``(H, W, 3) uint8`` BGR.
    """
    rng = seeded_rng(config.seed, "frames", plan.split, plan.subject, plan.action)
    return family_of(config).render_frames(config, plan.subject, plan.num_frames,
                                           plan.intervals,
                                           (plan.action,) * len(plan.intervals), rng)


def label_xml(intervals: Sequence[Tuple[int, int]]) -> str:
    """The label file of a sequence, as OpenCV's FileStorage writes it."""
    return labels.label_file_xml(intervals)


def encode_png(image: np.ndarray, path: str) -> bytes:
    """The PNG bytes of one image (``path`` names it in the error)."""
    ok, data = cv2.imencode(".png", image, PNG_PARAMS)
    if not ok:
        raise ActrecogError(f"{path}: PNG encoding failed")
    return data.tobytes()


def write_frames(frame_dir: str, frames) -> None:
    """Writes ``(depth, confi, color)`` frames as ``<modality>_<i>.png``."""
    os.makedirs(frame_dir, exist_ok=True)
    for index, images in enumerate(frames):
        for modality, image in zip(MODALITIES, images):
            path = os.path.join(frame_dir, f"{modality}_{index}.png")
            with open(path, "wb") as handle:
                handle.write(encode_png(image, path))


def write_sequence(dest: str, config: SyntheticConfig, plan: SequencePlan) -> int:
    """Renders and writes one sequence; the label file comes last, so a label
    file means its frames are complete. Returns the number of frames."""
    subject_dir = os.path.join(dest, plan.split, plan.subject)
    write_frames(os.path.join(subject_dir, plan.action), render_sequence(config, plan))
    labels.write_label_file(os.path.join(subject_dir, f"{plan.action}.xml"), plan.intervals)
    return plan.num_frames
