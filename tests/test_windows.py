"""The window rule of the 2019 tool (original.md point 3), on hand-worked cases."""

import numpy as np
import pytest

from coreLib.data import windows
from coreLib.data.labels import Interval


def labels_of(intervals, num_frames, seq_len):
    return windows.window_is_action([Interval(p, n) for p, n in intervals],
                                    num_frames, seq_len).tolist()


T, F = True, False


def test_interval_at_frame_zero_even_length():
    # L=4: action when >= 2 of the 4 frames are labelled; frames 0-3 labelled.
    assert labels_of([(0, 4)], 10, 4) == [T, T, T, F, F, F, F]


def test_interval_at_last_frame():
    # Frames 7, 8, 9 labelled in a 10-frame sequence; window starts 0..6.
    assert labels_of([(7, 3)], 10, 4) == [F, F, F, F, F, T, T]


def test_two_intervals_close_together_fill_the_gap():
    # Frames 2,3 and 6,7 labelled: every window touching both halves has 2 frames.
    assert labels_of([(2, 2), (6, 2)], 12, 4) == [T, T, T, T, T, T, T, F, F]


def test_odd_length_threshold_is_floor_half():
    # L=5: floor(5/2) = 2 labelled frames suffice.
    assert labels_of([(3, 2)], 8, 5) == [T, T, T, T]
    assert labels_of([(7, 1)], 12, 5) == [F] * 8


def test_even_length_exact_threshold():
    # L=6, threshold 3: a window with exactly 3 labelled frames is an action.
    assert labels_of([(5, 3)], 12, 6) == [F, F, T, T, T, T, F]


def test_overlapping_intervals_count_frames_once():
    assert labels_of([(2, 3), (3, 1)], 8, 4) == labels_of([(2, 3)], 8, 4)


def test_window_counts_and_starts():
    assert windows.num_windows(10, 4) == 7
    assert windows.num_windows(4, 4) == 1
    assert windows.num_windows(3, 4) == 0
    assert windows.window_starts(10, 4).tolist() == list(range(7))
    assert windows.labelled_frames_per_window(
        windows.frame_mask([Interval(1, 2)], 5), 2).tolist() == [1, 2, 1, 0]
    # L = 1: floor(1/2) = 0, so the rule labels every window with the action.
    assert labels_of([(0, 1)], 3, 1) == [T, T, T]


def test_matches_a_per_window_loop_on_random_cases():
    rng = np.random.default_rng(7)
    for _ in range(200):
        num_frames = int(rng.integers(1, 40))
        seq_len = int(rng.integers(1, num_frames + 1))
        intervals = []
        for _ in range(int(rng.integers(0, 4))):
            pos = int(rng.integers(0, num_frames))
            intervals.append((pos, int(rng.integers(1, num_frames - pos + 1))))
        inside = np.zeros(num_frames, bool)
        for pos, length in intervals:
            inside[pos:pos + length] = True
        expected = [int(inside[i - seq_len + 1:i + 1].sum()) >= seq_len // 2
                    for i in range(seq_len - 1, num_frames)]
        assert labels_of(intervals, num_frames, seq_len) == expected


def test_interval_outside_the_sequence_is_refused():
    with pytest.raises(ValueError, match="outside"):
        windows.frame_mask([Interval(8, 3)], 10)
    with pytest.raises(ValueError):
        windows.num_windows(10, 0)
