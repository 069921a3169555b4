"""One recording's per-frame probabilities -> its labels, segments and metrics.

Shared by the recorded runs (:mod:`.driver`) and the live detector (:mod:`.live`),
so a live stream is labelled exactly as the same frames recorded.
"""

import numpy as np

from coreLib.data import manifest as manifest_lib
from coreLib.detection import fusion, metrics as metrics_lib, segments as segments_lib
from coreLib.detection.config import DetectConfig
from coreLib.detection.results import SequenceDetection
from coreLib.detection.sources import SequenceSource


def label_sequence(sequence: SequenceSource, probabilities: np.ndarray,
                   manifest: manifest_lib.Manifest, mode: str, config: DetectConfig,
                   seconds: float, decoded_frames: int) -> SequenceDetection:
    """Labels, segments and (with ground truth) metrics from ``(N, K)`` float32
    per-frame probabilities."""
    background = manifest.num_classes - 1
    smoothing = segments_lib.SmoothingConfig(config.smooth, config.min_frames,
                                             config.hysteresis, mode == "online")
    smoothed, frame_labels, scores = segments_lib.label_frames(
        probabilities, smoothing, background)
    segments = segments_lib.segments_of(frame_labels, smoothed, manifest.classes, background)
    metrics = counts = None
    if sequence.truth is not None:
        delay = fusion.resolve_delay(config.delay, manifest.seq_len, mode)
        counts = metrics_lib.sequence_counts(sequence.truth, frame_labels, background, delay)
        metrics = metrics_lib.summarise([counts], mode == "online")
    return SequenceDetection(sequence, probabilities, smoothed, frame_labels, scores,
                             segments, seconds, decoded_frames, metrics, counts)
