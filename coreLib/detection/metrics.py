"""Metrics of continuous detection: per-frame labels against per-frame truth.

Pure numpy (no TensorFlow). Every function takes ``(N,)`` integer class indices
per frame and the index of the background class (``no-action``).

Definitions (after MS-TCN, Farha & Gall 2019, and the issue that asked for them):

- ``frame_accuracy``: percentage of frames whose label equals the truth, the
  background included.
- segments: maximal runs of one label; background runs are not segments.
- ``edit``: segmental edit score, ``(1 - levenshtein(P, T) / max(|P|, |T|)) * 100``
  over the sequences of segment labels P (prediction) and T (truth); 100 when
  both are empty. Over several sequences: the mean of the per-sequence scores.
- ``f1@k``: MS-TCN's matching rule exactly (its ``eval.py`` ``f_score``): each
  predicted segment, in order, takes the true segment with the highest IoU over
  all true segments (a true segment of another class counts as IoU 0; the
  earliest on a tie); it is a true positive when that IoU reaches ``k / 100``
  and that true segment is not matched yet (it is then matched), else a false
  positive - also when its best true segment was already matched, even if
  another true segment of its class would have done. Unmatched true segments
  are false negatives. TP/FP/FN are summed over the sequences before F1 is
  taken. With nothing to find and nothing found, 100.
- ``latency_frames`` (online mode): for each true segment, the frames from its
  start to the first frame inside it that is labelled with its action; a true
  segment whose action is never output inside it is a miss, counted apart. A
  fixed-lag detector (detect.py ``--delay D``) gives frame t's label only when
  frame t+D arrives: D is added to each latency.
- ``false_starts_per_1000_frames`` (online mode): predicted segments that share
  no frame with a true segment of their class, per 1000 frames.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

F1_THRESHOLDS = (10, 25, 50)


@dataclass(frozen=True)
class Segment:
    """A run of one label: frames ``start .. end`` (both inclusive)."""
    start: int
    end: int
    label: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def label_runs(labels: np.ndarray) -> List[Segment]:
    """Every maximal run of equal labels, in frame order (background included).

    Args:
        labels: ``(N,)`` integer class indices.

    Returns:
        The runs; they tile ``0 .. N-1``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.size == 0:
        return []
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], changes])
    ends = np.concatenate([changes - 1, [labels.size - 1]])
    return [Segment(int(s), int(e), int(labels[s])) for s, e in zip(starts, ends)]


def action_segments(labels: np.ndarray, background: int) -> List[Segment]:
    """The runs of :func:`label_runs` that are not background."""
    return [run for run in label_runs(labels) if run.label != background]


def _check_pair(truth: np.ndarray, prediction: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if truth.shape != prediction.shape or truth.ndim != 1:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} must be "
                         f"1-D of one length")
    return truth, prediction


def frame_accuracy(truth: np.ndarray, prediction: np.ndarray) -> float:
    """Percentage of frames labelled right, background included (100 for N = 0)."""
    truth, prediction = _check_pair(truth, prediction)
    if truth.size == 0:
        return 100.0
    return 100.0 * int(np.sum(truth == prediction)) / truth.size


def levenshtein(first: Sequence[int], second: Sequence[int]) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1)."""
    previous = list(range(len(second) + 1))
    for row, item in enumerate(first, start=1):
        current = [row] + [0] * len(second)
        for column, other in enumerate(second, start=1):
            current[column] = min(previous[column] + 1, current[column - 1] + 1,
                                  previous[column - 1] + (item != other))
        previous = current
    return previous[-1]


def edit_score(truth: np.ndarray, prediction: np.ndarray, background: int) -> float:
    """Segmental edit score in [0, 100] of one sequence (see the module docstring)."""
    truth, prediction = _check_pair(truth, prediction)
    true_labels = [run.label for run in action_segments(truth, background)]
    predicted_labels = [run.label for run in action_segments(prediction, background)]
    longest = max(len(true_labels), len(predicted_labels))
    if longest == 0:
        return 100.0
    return (1.0 - levenshtein(predicted_labels, true_labels) / longest) * 100.0


def segment_iou(first: Segment, second: Segment) -> float:
    """Intersection over union of two frame ranges (0 when disjoint)."""
    intersection = min(first.end, second.end) - max(first.start, second.start) + 1
    if intersection <= 0:
        return 0.0
    union = first.length + second.length - intersection
    return intersection / union


def match_counts(truth: np.ndarray, prediction: np.ndarray, background: int,
                 threshold: float) -> Tuple[int, int, int]:
    """``(TP, FP, FN)`` of one sequence at an IoU threshold in (0, 1], by MS-TCN's
    rule (see the module docstring).

    Predicted segments are taken in frame order; each looks only at its best true
    segment over all of them (another class's IoU is 0, the earliest on a tie)
    and is a true positive only when that one is unmatched and reaches the
    threshold.
    """
    truth, prediction = _check_pair(truth, prediction)
    true_segments = action_segments(truth, background)
    matched = [False] * len(true_segments)
    true_positives = false_positives = 0
    for predicted in action_segments(prediction, background):
        ious = [segment_iou(predicted, true_segment)
                if true_segment.label == predicted.label else 0.0
                for true_segment in true_segments]
        best = int(np.argmax(ious)) if ious else None
        if best is not None and ious[best] >= threshold and not matched[best]:
            matched[best] = True
            true_positives += 1
        else:
            false_positives += 1
    return true_positives, false_positives, len(true_segments) - sum(matched)


def f1_from_counts(true_positives: int, false_positives: int, false_negatives: int) -> float:
    """F1 x 100 from summed counts; 100 when there was nothing to find or find."""
    if true_positives + false_positives + false_negatives == 0:
        return 100.0
    return 200.0 * true_positives / (2 * true_positives + false_positives + false_negatives)


def onset_latencies(truth: np.ndarray, prediction: np.ndarray,
                    background: int, delay: int = 0) -> Tuple[List[int], int]:
    """Frames from each true segment's start to its action's first output in it.

    Args:
        delay: frames after frame t at which its label was given (added to each
            latency).

    Returns:
        ``(latencies, misses)``: one latency per detected true segment (frame
        order), and the number of true segments whose action never appears in
        the prediction within the segment.
    """
    truth, prediction = _check_pair(truth, prediction)
    latencies, misses = [], 0
    for segment in action_segments(truth, background):
        hits = np.flatnonzero(prediction[segment.start:segment.end + 1] == segment.label)
        if hits.size:
            latencies.append(int(hits[0]) + delay)
        else:
            misses += 1
    return latencies, misses


def false_starts(truth: np.ndarray, prediction: np.ndarray, background: int) -> int:
    """Predicted segments that share no frame with a truth frame of their class."""
    truth, prediction = _check_pair(truth, prediction)
    return sum(1 for segment in action_segments(prediction, background)
               if not np.any(truth[segment.start:segment.end + 1] == segment.label))


@dataclass
class SequenceCounts:
    """What one sequence contributes to the overall figures."""
    num_frames: int
    correct_frames: int
    edit: float
    matches: Dict[int, Tuple[int, int, int]]
    latencies: List[int]
    misses: int
    false_starts: int


def sequence_counts(truth: np.ndarray, prediction: np.ndarray,
                    background: int, delay: int = 0) -> SequenceCounts:
    """Counts of one sequence, to be reported alone or summed (:func:`summarise`);
    ``delay`` as in :func:`onset_latencies`."""
    truth, prediction = _check_pair(truth, prediction)
    latencies, misses = onset_latencies(truth, prediction, background, delay)
    return SequenceCounts(
        num_frames=int(truth.size), correct_frames=int(np.sum(truth == prediction)),
        edit=edit_score(truth, prediction, background),
        matches={k: match_counts(truth, prediction, background, k / 100.0)
                 for k in F1_THRESHOLDS},
        latencies=latencies, misses=misses,
        false_starts=false_starts(truth, prediction, background))


def summarise(counts: Sequence[SequenceCounts], online: bool) -> dict:
    """The metrics of one or several sequences (the ``summary.json`` keys).

    Args:
        counts: one entry per scored sequence (at least one).
        online: add ``latency_frames``, ``missed_segments`` and
            ``false_starts_per_1000_frames``.

    Returns:
        ``frame_accuracy``, ``edit``, ``f1@10``, ``f1@25``, ``f1@50`` (0-100),
        ``num_frames``, and for online mode ``latency_frames`` (None when no true
        segment was detected), ``missed_segments``, ``detected_segments`` and
        ``false_starts_per_1000_frames``.
    """
    if not counts:
        raise ValueError("no sequences to summarise")
    num_frames = sum(item.num_frames for item in counts)
    value = {
        "num_frames": num_frames,
        "frame_accuracy": (100.0 * sum(item.correct_frames for item in counts) / num_frames
                           if num_frames else 100.0),
        "edit": float(np.mean([item.edit for item in counts])),
    }
    for k in F1_THRESHOLDS:
        summed = [sum(item.matches[k][part] for item in counts) for part in range(3)]
        value[f"f1@{k}"] = f1_from_counts(*summed)
    if online:
        latencies = [latency for item in counts for latency in item.latencies]
        value["latency_frames"] = float(np.mean(latencies)) if latencies else None
        value["detected_segments"] = len(latencies)
        value["missed_segments"] = sum(item.misses for item in counts)
        starts = sum(item.false_starts for item in counts)
        value["false_starts_per_1000_frames"] = (1000.0 * starts / num_frames
                                                 if num_frames else 0.0)
    return value


def sequence_metrics(truth: np.ndarray, prediction: np.ndarray, background: int,
                     online: bool, delay: int = 0) -> dict:
    """:func:`summarise` of one sequence."""
    return summarise([sequence_counts(truth, prediction, background, delay)], online)

