"""From per-window or per-step model outputs to one probability row per frame.

Modes:
    offline  the probabilities of frame t are the mean over every window of L
             frames that covers t (the windows ending at t .. t+L-1);
    online   causal: frame t sees only frames <= t. A window model runs on the
             window ending at t, and frames 0 .. L-2, which have no full
             window, are output as no-action (probability 1); a streaming model
             runs one frame at a time with its state.
             With ``delay`` D > 0 (by default D = L-1) the label of frame t is
             given when frame t+D arrives, from the mean of the outputs at
             t .. t+D (a fixed-lag decision: every window that ends by t+D and
             holds t has a say); D = L-1 gives a window model the offline
             mode's probabilities, D frames later. The latency metric counts
             the D frames; D = 0 labels frame t as it arrives.
"""

from typing import Optional

import numpy as np

from coreLib.detection import segments as segments_lib
from coreLib.errors import ActrecogError


def frame_probabilities(window_rows: np.ndarray, seq_len: int, mode: str) -> np.ndarray:
    """Per-frame probabilities from the windows' (rows by last frame).

    Args:
        window_rows: ``(N, K)`` from
            :func:`coreLib.inference.window_runners.window_probabilities`.
        seq_len: L.
        mode: ``online``: row t itself (frames before L-1: no-action, probability
            1); ``offline``: the mean of rows ``t .. t+L-1`` that exist (every
            window covering frame t).

    Returns:
        ``(N, K)`` float32.
    """
    count = len(window_rows)
    if mode == "online":
        result = window_rows.copy()
        result[:seq_len - 1] = 0.0
        result[:seq_len - 1, -1] = 1.0
        return result.astype(np.float32)
    frames_index = np.arange(count)
    first = np.maximum(frames_index, seq_len - 1) - (seq_len - 1)
    last = np.minimum(frames_index + seq_len - 1, count - 1) - (seq_len - 1)
    return segments_lib.range_means(window_rows[seq_len - 1:], first, last)


def resolve_delay(delay: Optional[int], seq_len: int, mode: str) -> int:
    """The fixed lag in frames: ``delay``, or by default L - 1 online and 0 offline.

    Raises:
        ActrecogError: a lag asked for in offline mode.
    """
    if mode != "online":
        if delay:
            raise ActrecogError(f"--delay {delay}: a fixed lag is for --mode online; "
                                f"offline already sees the frames after each one")
        return 0
    return seq_len - 1 if delay is None else delay


def delayed_probabilities(probabilities: np.ndarray, delay: int) -> np.ndarray:
    """Fixed-lag online probabilities: frame t from the causal outputs at t .. t+D.

    Row t is the mean of rows ``t .. min(t+D, N-1)`` of the causal output, so it
    is known once frame t+D has arrived (at the end of a recording, once the
    last frame has). Each of those rows was computed from frames <= its own
    index; none from later frames.

    Args:
        probabilities: ``(N, K)`` causal per-frame output.
        delay: D >= 0 (0 returns the input unchanged).

    Returns:
        ``(N, K)`` float32.
    """
    if delay == 0 or len(probabilities) == 0:
        return probabilities
    first = np.arange(len(probabilities))
    return segments_lib.range_means(probabilities, first,
                                    np.minimum(first + delay, len(probabilities) - 1))
