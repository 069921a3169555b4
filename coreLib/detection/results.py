"""What detection found: per sequence (:class:`SequenceDetection`) and per run
(:class:`DetectResult`)."""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from coreLib.detection import metrics as metrics_lib
from coreLib.detection.sources import SequenceSource


@dataclass
class SequenceDetection:
    """What detection found in one sequence."""
    source: SequenceSource
    probabilities: np.ndarray        # (N, K) float32 model output per frame
    smoothed: np.ndarray             # (N, K) float32
    labels: np.ndarray               # (N,) int64
    scores: np.ndarray               # (N,) float32
    segments: List[dict]
    seconds: float
    decoded_frames: int
    metrics: Optional[dict] = None                          # None without truth
    counts: Optional[metrics_lib.SequenceCounts] = None     # what the overall figures sum
    crop_boxes: Optional[np.ndarray] = None   # (N, 4) float32 hand-centred frames' boxes
    frames_without_hand: int = 0              # of those, frames whose box was held


@dataclass(frozen=True)
class DetectResult:
    """What :func:`coreLib.detection.driver.detect` produced."""
    sequences: Tuple[SequenceDetection, ...]
    summary: dict
    files: Tuple[str, ...]

