"""Online labels frame by frame, and the events they make, the moment each is decided.

:class:`FrameLabeler` takes the causal model output of one frame at a time and
gives what ``--mode online`` gives for the whole recording (the fixed lag of
:func:`coreLib.detection.fusion.delayed_probabilities`, the causal smoothing and
labelling of :mod:`coreLib.detection.segments`), with the same float operations
in the same order, so the labels are identical, not close: frame t is labelled
when frame t+D has arrived (or at the end of the stream).

:class:`EventMaker` turns the labels, in order, into events; an event is one JSON
line::

    {"event": "start", "action", "frame", "time_s", "score", "decided_frame",
     "delay_frames"}
    {"event": "end", "action", "start_frame", "frame", "time_s", "score",
     "decided_frame", "delay_frames"}

``frame`` is the segment's first (start) or last (end, inclusive) frame,
``time_s`` its time in seconds since the first frame, ``score`` the smoothed
probability of the action at that frame (start) or its mean over the segment
(end, as in ``segments.json``); ``decided_frame`` is the frame whose arrival
decided the event (``frame + delay_frames`` at most: a segment's end is known
when the frame after it is labelled; at the end of the stream, the last frame).

Pure numpy, no TensorFlow.
"""

import collections
import json
import os
import sys
from typing import Callable, Dict, List, Optional

import numpy as np

from coreLib.detection import segments as segments_lib
from coreLib.errors import ActrecogError

SCORE_DIGITS = 6
TIME_DIGITS = 6


class _RunningSums:
    """Float64 prefix sums of rows, the last ``keep`` of them: the sums
    :func:`coreLib.detection.segments.range_means` takes, one row at a time
    (``np.cumsum`` adds row by row, so these are the same numbers)."""

    def __init__(self, num_classes: int, keep: int):
        self.sums = collections.deque([np.zeros(num_classes, np.float64)], maxlen=keep + 1)
        self.count = 0          # rows added; sums[-1] is the prefix sum of all of them

    def add(self, row: np.ndarray) -> None:
        self.sums.append(self.sums[-1] + row.astype(np.float64))
        self.count += 1

    def mean(self, first: int, last: int) -> np.ndarray:
        """``(K,)`` float32: the mean of rows ``first .. last`` (both kept)."""
        base = self.count + 1 - len(self.sums)      # prefix index of sums[0]
        total = self.sums[last + 1 - base] - self.sums[first - base]
        return (total / (last - first + 1)).astype(np.float32)


class FrameLabeler:
    """``--mode online``'s labels, one frame at a time.

    Args:
        num_classes: K.
        delay: D >= 0, the fixed lag in frames.
        smoothing: causal :class:`coreLib.detection.segments.SmoothingConfig`.
        background: the no-action class (the label before frame 0).
    """

    def __init__(self, num_classes: int, delay: int,
                 smoothing: segments_lib.SmoothingConfig, background: int):
        if not smoothing.causal:
            raise ValueError("FrameLabeler needs a causal SmoothingConfig")
        self.delay, self.smoothing = delay, smoothing
        self.causal_sums = _RunningSums(num_classes, delay + 1)
        self.smooth_sums = _RunningSums(num_classes, smoothing.smooth)
        self.current, self.candidate, self.candidate_since = background, None, 0
        self.received = 0       # causal rows in
        self.labelled = 0       # frames labelled

    def push(self, causal_row: np.ndarray) -> List[tuple]:
        """One frame's causal output ``(K,)`` float32; returns the frames it decides:
        ``[(frame, label, smoothed row (K,) float32)]`` (none while fewer than D+1
        rows have come)."""
        row = np.asarray(causal_row, np.float32).reshape(-1)
        self.causal_sums.add(row)
        self.received += 1
        if self.received <= self.delay:
            return []
        if self.delay == 0:
            return [self._label(row)]
        frame = self.received - 1 - self.delay
        return [self._label(self.causal_sums.mean(frame, frame + self.delay))]

    def finish(self) -> List[tuple]:
        """The frames still waiting for their lag at the end of the stream: each
        from the rows up to the last one."""
        last = self.received - 1
        return [self._label(self.causal_sums.mean(frame, last))
                for frame in range(self.labelled, self.received)]

    def _label(self, delayed: np.ndarray) -> tuple:
        frame = self.labelled
        smooth = self.smoothing.smooth
        if smooth == 1:
            smoothed = delayed.astype(np.float32)
        else:
            self.smooth_sums.add(delayed)
            smoothed = self.smooth_sums.mean(max(frame - smooth + 1, 0), frame)
        self._decide(frame, smoothed)
        self.labelled += 1
        return frame, self.current, smoothed

    def _decide(self, frame: int, smoothed: np.ndarray) -> None:
        """One step of :func:`coreLib.detection.segments.decide_labels` (causal)."""
        top = int(smoothed.argmax())
        wants_switch = (top != self.current and smoothed[top]
                        >= smoothed[self.current] + self.smoothing.hysteresis)
        if not wants_switch:
            self.candidate = None
            return
        if self.candidate != top:
            self.candidate, self.candidate_since = top, frame
        if frame - self.candidate_since + 1 >= self.smoothing.min_frames:
            self.current, self.candidate = top, None


class EventMaker:
    """Events from labels given in frame order.

    Args:
        classes: class names, no-action last.
        delay: D, written on each event.
        time_of: frame index -> seconds since the first frame.
    """

    def __init__(self, classes, delay: int, time_of: Callable[[int], float]):
        self.classes, self.delay, self.time_of = tuple(classes), delay, time_of
        self.background = len(self.classes) - 1
        self.previous = self.background
        self.start = 0
        self.scores: List[np.float32] = []    # the action's smoothed probability per frame

    def _event(self, kind: str, label: int, frame: int, score: float, decided: int) -> dict:
        return {"event": kind, "action": self.classes[label], "frame": int(frame),
                "time_s": round(float(self.time_of(frame)), TIME_DIGITS),
                "score": round(float(score), SCORE_DIGITS), "decided_frame": int(decided),
                "delay_frames": self.delay}

    def _end(self, last_frame: int, decided: int) -> dict:
        # As segments_of scores a segment: the float32 mean over its frames.
        score = np.mean(np.asarray(self.scores, np.float32))
        event = self._event("end", self.previous, last_frame, score, decided)
        event["start_frame"] = self.start
        return event

    def label(self, frame: int, label: int, smoothed: np.ndarray, decided: int) -> List[dict]:
        """Frame ``frame``'s label, decided when frame ``decided`` arrived."""
        events = []
        if label != self.previous:
            if self.previous != self.background:
                events.append(self._end(frame - 1, decided))
            if label != self.background:
                events.append(self._event("start", label, frame, smoothed[label], decided))
            self.previous, self.start, self.scores = label, frame, []
        if label != self.background:
            self.scores.append(smoothed[label])
        return events

    def finish(self, num_frames: int) -> List[dict]:
        """The end of a segment still open at the end of the stream."""
        if self.previous == self.background or num_frames == 0:
            return []
        return [self._end(num_frames - 1, num_frames - 1)]


def events_of_labels(labels: np.ndarray, smoothed: np.ndarray, classes, delay: int,
                     time_of: Callable[[int], float]) -> List[dict]:
    """The events a live run gives for a whole recording's online labels, in the
    order it gives them (frame t's label decided at frame ``min(t + D, N - 1)``).

    Args:
        labels: ``(N,)`` int64 online labels.
        smoothed: ``(N, K)`` float32 probabilities they came from.
        classes: class names, no-action last.
        delay: D.
        time_of: frame index -> seconds since the first frame.
    """
    maker = EventMaker(classes, delay, time_of)
    count = len(labels)
    events = []
    for frame in range(count):
        events += maker.label(frame, int(labels[frame]), smoothed[frame],
                              min(frame + delay, count - 1))
    return events + maker.finish(count)


STDOUT = "-"


def check_events_path(path: Optional[str]) -> None:
    """Raises ActrecogError when ``--events PATH`` lies in a folder that does not exist."""
    if path in (None, STDOUT):
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ActrecogError(f"--events {path}: folder {folder} does not exist")


class EventsFile:
    """Events as JSON lines, each batch flushed at once, to a file opened at the
    first write (``-``: standard output; None: nowhere). A context manager.

    Attributes:
        written: events written so far.
    """

    def __init__(self, path: Optional[str]):
        self.path, self.handle, self.written = path, None, 0

    def write(self, events: List[dict]) -> None:
        if self.path is None:
            return
        if self.handle is None:
            self.handle = (sys.stdout if self.path == STDOUT
                           else open(self.path, "w", encoding="utf-8"))
        for event in events:
            self.handle.write(json.dumps(event) + "\n")
        self.written += len(events)
        if events:
            self.handle.flush()

    def close(self) -> None:
        """Creates the file when no event came; closes it."""
        self.write([])
        if self.handle is not None and self.handle is not sys.stdout:
            self.handle.close()

    def __enter__(self):
        return self

    def __exit__(self, error_type, *_):
        if error_type is None:
            self.close()
        elif self.handle is not None and self.handle is not sys.stdout:
            self.handle.close()


def nominal_times(fps: float) -> Callable[[int], float]:
    """``frame -> frame / fps``: times of a stream without timestamps."""
    return lambda frame: frame / fps


class StampedTimes:
    """Times from the timestamps given with the frames (seconds since the first)."""

    def __init__(self):
        self.first: Optional[float] = None
        self.times: Dict[int, float] = {}

    def add(self, frame: int, timestamp: float) -> None:
        if self.first is None:
            self.first = timestamp
        self.times[frame] = timestamp - self.first

    def __call__(self, frame: int) -> float:
        return self.times[frame]
