"""Per-frame class probabilities -> per-frame labels -> action segments.

Three steps, each optional, all pure numpy (no TensorFlow):

1. Smoothing: a moving average of the probabilities over ``smooth`` frames.
   Offline it is centred on the frame; online it is causal (frames ``t-smooth+1
   .. t``), so the label of frame t never depends on a later frame. Near the
   ends the average runs over the frames that exist.
2. Labels, by a small state machine run front to back:
   - hysteresis: the label leaves the current class c for the best class k only
     when ``p[k] >= p[c] + hysteresis`` (0: plain argmax), which stops the label
     from flickering between two near-equal classes;
   - minimum duration: a new class must be the candidate for ``min_frames``
     frames in a row before the label switches to it. Online the switch is
     output when it is confirmed (``min_frames - 1`` frames late: the price of
     being causal); offline the confirmed switch is dated back to the frame the
     candidate began, so every run but the first lasts at least ``min_frames``
     frames and shorter bursts are absorbed by the run before them.
3. Segments: maximal runs of one non-background label, ``{start, end
   (inclusive), action, score}``, score = the mean smoothed probability of the
   run's class over the run.
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from coreLib.detection import metrics


@dataclass(frozen=True)
class SmoothingConfig:
    """How probabilities become labels.

    Attributes:
        smooth: frames of the moving average (1: none).
        min_frames: frames a new class must persist before the label switches.
        hysteresis: probability margin a new class needs over the current one,
            in [0, 1).
        causal: online mode (only frames <= t decide frame t).
    """
    smooth: int = 1
    min_frames: int = 1
    hysteresis: float = 0.0
    causal: bool = False

    def __post_init__(self):
        for name in ("smooth", "min_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= self.hysteresis < 1.0:
            raise ValueError(f"hysteresis must be in [0, 1), got {self.hysteresis!r}")


def range_means(values: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Row t: the mean of ``values[first[t] .. last[t]]`` (both inclusive), from one
    float64 prefix sum.

    Args:
        values: ``(M, K)`` float.
        first, last: ``(N,)`` int indices into ``values``, ``first <= last``.

    Returns:
        ``(N, K)`` float32.
    """
    cumulative = np.concatenate([np.zeros((1,) + values.shape[1:]),
                                 np.cumsum(values, axis=0, dtype=np.float64)])
    sums = cumulative[last + 1] - cumulative[first]
    return (sums / (last - first + 1)[:, None]).astype(np.float32)


def moving_average(probabilities: np.ndarray, smooth: int, causal: bool) -> np.ndarray:
    """Moving average of per-frame probabilities along time.

    Args:
        probabilities: ``(N, K)`` float.
        smooth: window in frames (>= 1).
        causal: average frames ``t-smooth+1 .. t``; else frames
            ``t-(smooth-1)//2 .. t+smooth//2``. Both clipped to ``0 .. N-1``.

    Returns:
        ``(N, K)`` float32.
    """
    probabilities = np.asarray(probabilities, np.float64)
    count = probabilities.shape[0]
    if smooth == 1 or count == 0:
        return probabilities.astype(np.float32)
    frames = np.arange(count)
    if causal:
        first, last = frames - smooth + 1, frames
    else:
        first, last = frames - (smooth - 1) // 2, frames + smooth // 2
    return range_means(probabilities, np.clip(first, 0, count - 1),
                       np.clip(last, 0, count - 1))


def decide_labels(probabilities: np.ndarray, config: SmoothingConfig,
                  initial_label: int) -> np.ndarray:
    """Per-frame labels from (smoothed) probabilities: hysteresis and minimum duration.

    Args:
        probabilities: ``(N, K)`` float, already smoothed.
        config: hysteresis, min_frames, and causal (whether a confirmed switch is
            dated back to the candidate's first frame).
        initial_label: the label before frame 0 (the background class).

    Returns:
        ``(N,)`` int64 class indices.
    """
    probabilities = np.asarray(probabilities)
    best = probabilities.argmax(axis=1) if probabilities.size else np.zeros(0, np.int64)
    labels = np.empty(len(best), np.int64)
    current, candidate, candidate_since = initial_label, None, 0
    for frame, top in enumerate(best):
        top = int(top)
        wants_switch = (top != current and probabilities[frame, top]
                        >= probabilities[frame, current] + config.hysteresis)
        if not wants_switch:
            candidate = None
        else:
            if candidate != top:
                candidate, candidate_since = top, frame
            if frame - candidate_since + 1 >= config.min_frames:
                current, candidate = top, None
                if not config.causal:
                    labels[candidate_since:frame] = current
        labels[frame] = current
    return labels


def frame_scores(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(N,)`` float32: each frame's probability of its label."""
    return np.asarray(probabilities)[np.arange(len(labels)), labels].astype(np.float32)


def label_frames(probabilities: np.ndarray, config: SmoothingConfig,
                 background: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothing and labelling in one (steps 1 and 2 of the module docstring).

    Args:
        probabilities: ``(N, K)`` model probabilities per frame.
        config: see :class:`SmoothingConfig`.
        background: the no-action class index (the label before frame 0).

    Returns:
        ``(smoothed (N, K) float32, labels (N,) int64, scores (N,) float32)``.
    """
    smoothed = moving_average(probabilities, config.smooth, config.causal)
    labels = decide_labels(smoothed, config, background)
    return smoothed, labels, frame_scores(smoothed, labels)


def segments_of(labels: np.ndarray, smoothed: np.ndarray, classes: Sequence[str],
                background: int) -> List[dict]:
    """Runs of one action as JSON-ready dicts ``{start, end, action, score}``.

    Args:
        labels: ``(N,)`` class indices.
        smoothed: ``(N, K)`` probabilities the labels came from.
        classes: class names in index order.
        background: the no-action class index (its runs are not segments).
    """
    return [{"start": run.start, "end": run.end, "action": classes[run.label],
             "score": round(float(np.mean(smoothed[run.start:run.end + 1, run.label])), 6)}
            for run in metrics.action_segments(labels, background)]
