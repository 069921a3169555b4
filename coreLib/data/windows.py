"""Sliding windows over a sequence and their labels (the 2019 tool's rule).

For a sequence of N frames and window length L, every i in ``L-1 .. N-1`` gives
the window of frames ``[i-L+1, i]`` (``start = i-L+1`` and ``stop = i``, both
inclusive), so there are ``N - (L-1)`` windows. A window takes the sequence's
action when at least ``floor(L/2)`` of its L frames lie inside the labelled
intervals, and ``no-action`` otherwise.

Pure numpy functions, vectorised with cumulative sums (no per-window loop).
"""

from typing import Iterable

import numpy as np


def num_windows(num_frames: int, seq_len: int) -> int:
    """``N - (L-1)``, or 0 when the sequence is shorter than a window."""
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    return max(0, num_frames - (seq_len - 1))


def action_threshold(seq_len: int) -> int:
    """Frames inside labelled intervals needed for an action window: floor(L/2)."""
    return seq_len // 2


def frame_mask(intervals: Iterable, num_frames: int) -> np.ndarray:
    """Which frames lie inside a labelled interval.

    Args:
        intervals: objects with ``pos`` and ``len`` (see coreLib.data.labels.Interval),
            inside ``[0, num_frames)``; they may overlap.
        num_frames: N.

    Returns:
        ``(N,)`` bool.
    """
    # +1 at each start, -1 one past each end; the running sum counts the
    # intervals covering a frame.
    edges = np.zeros(num_frames + 1, np.int64)
    for interval in intervals:
        if interval.pos < 0 or interval.len < 1 or interval.pos + interval.len > num_frames:
            raise ValueError(f"interval (pos {interval.pos}, len {interval.len}) "
                             f"outside a sequence of {num_frames} frames")
        edges[interval.pos] += 1
        edges[interval.pos + interval.len] -= 1
    return np.cumsum(edges[:-1]) > 0


def labelled_frames_per_window(mask: np.ndarray, seq_len: int) -> np.ndarray:
    """How many frames of each window lie inside labelled intervals.

    Args:
        mask: ``(N,)`` bool from :func:`frame_mask`.
        seq_len: L.

    Returns:
        ``(N - (L-1),)`` int64; entry ``s`` is for the window starting at frame s.
    """
    count = num_windows(len(mask), seq_len)
    cumulative = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    return cumulative[seq_len:seq_len + count] - cumulative[:count]


def window_starts(num_frames: int, seq_len: int) -> np.ndarray:
    """``(N - (L-1),)`` int64: first frame of each window, ascending."""
    return np.arange(num_windows(num_frames, seq_len), dtype=np.int64)


def window_is_action(intervals: Iterable, num_frames: int, seq_len: int) -> np.ndarray:
    """The label rule: whether each window is the action (else ``no-action``).

    Args:
        intervals: labelled intervals of the sequence (``pos``/``len``).
        num_frames: N.
        seq_len: L.

    Returns:
        ``(N - (L-1),)`` bool, in window-start order.
    """
    counts = labelled_frames_per_window(frame_mask(intervals, num_frames), seq_len)
    return counts >= action_threshold(seq_len)
