"""coreLib.detection.metrics and coreLib.detection.segments on small arrays worked
out by hand (the expected figures are derived in the comments)."""

import numpy as np
import pytest

from coreLib.detection import metrics as dm
from coreLib.detection import segments as ds

BACKGROUND = 0


def labels(text: str) -> np.ndarray:
    """'0011' -> array([0, 0, 1, 1])."""
    return np.array([int(character) for character in text], np.int64)


# Truth: class 1 on frames 2-9, class 2 on 12-15 (20 frames).
# Prediction: class 1 on frame 0 (a false start), class 1 on 4-9, class 2 on 15-18.
TRUTH_B = labels("00111111110022220000")
PREDICTION_B = labels("10001111110000022220")


def test_label_runs_tile_the_sequence():
    runs = dm.label_runs(labels("0011200"))
    assert runs == [dm.Segment(0, 1, 0), dm.Segment(2, 3, 1), dm.Segment(4, 4, 2),
                    dm.Segment(5, 6, 0)]
    assert dm.action_segments(labels("0011200"), BACKGROUND) == runs[1:3]
    assert dm.label_runs(np.zeros(0, np.int64)) == []


def test_hand_worked_sequence():
    # Frames wrong: 0, 2, 3, 12, 13, 14, 16, 17, 18 -> 9 of 20 -> 55 %.
    assert dm.frame_accuracy(TRUTH_B, PREDICTION_B) == 55.0
    # Segment labels: truth [1, 2], prediction [1, 1, 2]: one insertion, 1 - 1/3.
    assert dm.edit_score(TRUTH_B, PREDICTION_B, BACKGROUND) == pytest.approx(200 / 3)
    # IoUs: 1@0 vs 1@2-9: 0 (FP); 1@4-9 vs 1@2-9: 6/8; 2@15-18 vs 2@12-15: 1/7.
    assert dm.segment_iou(dm.Segment(4, 9, 1), dm.Segment(2, 9, 1)) == 0.75
    assert dm.segment_iou(dm.Segment(15, 18, 2), dm.Segment(12, 15, 2)) == pytest.approx(1 / 7)
    assert dm.match_counts(TRUTH_B, PREDICTION_B, BACKGROUND, 0.10) == (2, 1, 0)
    assert dm.match_counts(TRUTH_B, PREDICTION_B, BACKGROUND, 0.25) == (1, 2, 1)
    assert dm.match_counts(TRUTH_B, PREDICTION_B, BACKGROUND, 0.50) == (1, 2, 1)
    # Class 1 first output at frame 4 (start 2): 2; class 2 at 15 (start 12): 3.
    assert dm.onset_latencies(TRUTH_B, PREDICTION_B, BACKGROUND) == ([2, 3], 0)
    assert dm.false_starts(TRUTH_B, PREDICTION_B, BACKGROUND) == 1
    metrics = dm.sequence_metrics(TRUTH_B, PREDICTION_B, BACKGROUND, online=True)
    assert metrics == pytest.approx({
        "num_frames": 20, "frame_accuracy": 55.0, "edit": 200 / 3,
        "f1@10": 2 * 2 / (2 * 2 + 1 + 0) * 100,     # 80
        "f1@25": 2 * 1 / (2 * 1 + 2 + 1) * 100,     # 40
        "f1@50": 40.0,
        "latency_frames": 2.5, "detected_segments": 2, "missed_segments": 0,
        "false_starts_per_1000_frames": 1000 / 20})


def test_counts_are_summed_over_sequences():
    # A second sequence: no action in the truth, one predicted segment (FP, false
    # start), 8 of 10 frames right, edit 0 (nothing to match one segment).
    truth_c, prediction_c = labels("0000000000"), labels("0002200000")
    assert dm.edit_score(truth_c, prediction_c, BACKGROUND) == 0.0
    counts = [dm.sequence_counts(TRUTH_B, PREDICTION_B, BACKGROUND),
              dm.sequence_counts(truth_c, prediction_c, BACKGROUND)]
    overall = dm.summarise(counts, online=True)
    assert overall == pytest.approx({
        "num_frames": 30, "frame_accuracy": 100 * (11 + 8) / 30,
        "edit": (200 / 3 + 0) / 2,
        "f1@10": 2 * 2 / (2 * 2 + 2 + 0) * 100,     # TP 2, FP 2, FN 0
        "f1@25": 2 * 1 / (2 * 1 + 3 + 1) * 100,     # TP 1, FP 3, FN 1
        "f1@50": 2 * 1 / (2 * 1 + 3 + 1) * 100,
        "latency_frames": 2.5, "detected_segments": 2, "missed_segments": 0,
        "false_starts_per_1000_frames": 1000 * 2 / 30})
    assert set(dm.summarise(counts, online=False)) == {
        "num_frames", "frame_accuracy", "edit", "f1@10", "f1@25", "f1@50"}


def test_f1_follows_ms_tcn_matching_rule():
    # MS-TCN (eval.py f_score): a predicted segment takes its best true segment
    # over all of them and is a false positive when that one is already matched.
    # Truth: class 1 on 0-5 (T1) and on 8 (T2). Prediction: class 1 on 0-1 (P1),
    # then on 3-8 (P2).
    truth, prediction = labels("1111110010"), labels("1101111110")
    # P1: IoU with T1 = 2/6, with T2 0 -> T1.
    assert dm.segment_iou(dm.Segment(0, 1, 1), dm.Segment(0, 5, 1)) == pytest.approx(1 / 3)
    # P2: IoU with T1 = frames 3-5 / frames 0-8 = 3/9, with T2 = 1/6 -> T1 again.
    assert dm.segment_iou(dm.Segment(3, 8, 1), dm.Segment(0, 5, 1)) == pytest.approx(1 / 3)
    assert dm.segment_iou(dm.Segment(3, 8, 1), dm.Segment(8, 8, 1)) == pytest.approx(1 / 6)
    # k=10 and 25: P1 matches T1 (1/3 >= k); P2's best, T1, is taken: FP, and T2
    # stays unmatched: TP 1, FP 1, FN 1 -> F1 = 2/(2+1+1) = 50. (The rule "best
    # *unmatched* true segment of its class" would give P2 T2 at k=10: F1 100.)
    assert dm.match_counts(truth, prediction, BACKGROUND, 0.10) == (1, 1, 1)
    assert dm.match_counts(truth, prediction, BACKGROUND, 0.25) == (1, 1, 1)
    # k=50: 1/3 < 1/2 for both: TP 0, FP 2, FN 2 -> 0.
    assert dm.match_counts(truth, prediction, BACKGROUND, 0.50) == (0, 2, 2)
    metrics = dm.sequence_metrics(truth, prediction, BACKGROUND, online=False)
    assert (metrics["f1@10"], metrics["f1@25"], metrics["f1@50"]) == (50.0, 50.0, 0.0)


def test_f1_of_another_class_and_no_truth():
    # A predicted class-2 segment over a class-1 truth: IoU 0 with it (another
    # class), so FP; with no true segment at all every prediction is an FP.
    assert dm.match_counts(labels("0111000"), labels("0222000"), BACKGROUND, 0.10) == (0, 1, 1)
    assert dm.match_counts(labels("0000000"), labels("0110220"), BACKGROUND, 0.10) == (0, 2, 0)


def test_a_missed_segment_is_counted_apart_from_latency():
    truth, prediction = labels("0111000220"), labels("0000000022")
    assert dm.onset_latencies(truth, prediction, BACKGROUND) == ([1], 1)
    metrics = dm.sequence_metrics(truth, prediction, BACKGROUND, online=True)
    assert metrics["latency_frames"] == 1.0
    assert (metrics["detected_segments"], metrics["missed_segments"]) == (1, 1)
    nothing = dm.sequence_metrics(truth, labels("0000000000"), BACKGROUND, online=True)
    assert nothing["latency_frames"] is None and nothing["missed_segments"] == 2
    assert nothing["f1@10"] == 0.0 and nothing["edit"] == 0.0
    # A fixed lag of D frames: each label was given D frames after its frame.
    assert dm.onset_latencies(truth, prediction, BACKGROUND, delay=3) == ([4], 1)
    assert dm.sequence_metrics(truth, prediction, BACKGROUND, True, 3)[
        "latency_frames"] == 4.0


@pytest.mark.parametrize("truth", ["00111000222201", "0000", "1111", "12121"])
def test_perfect_prediction_scores_100_everywhere(truth):
    truth = labels(truth)
    metrics = dm.sequence_metrics(truth, truth.copy(), BACKGROUND, online=True)
    for key in ("frame_accuracy", "edit", "f1@10", "f1@25", "f1@50"):
        assert metrics[key] == 100.0, key
    assert metrics["false_starts_per_1000_frames"] == 0.0
    assert metrics["missed_segments"] == 0
    assert metrics["latency_frames"] in (0.0, None)


def test_levenshtein():
    assert dm.levenshtein([], []) == 0
    assert dm.levenshtein([1, 2, 3], []) == 3
    assert dm.levenshtein([1, 2, 3], [1, 3]) == 1
    assert dm.levenshtein([1, 2, 3], [3, 2, 1]) == 2


# ----------------------------------------------------------------------------- segments

def one_hot(text: str, num_classes: int = 3) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels(text)]


def test_moving_average_causal_and_centred():
    probabilities = one_hot("0110", num_classes=2)
    causal = ds.moving_average(probabilities, 3, causal=True)
    np.testing.assert_allclose(causal, [[1, 0], [.5, .5], [1 / 3, 2 / 3], [1 / 3, 2 / 3]],
                               rtol=1e-6)
    centred = ds.moving_average(probabilities, 3, causal=False)
    np.testing.assert_allclose(centred, [[.5, .5], [1 / 3, 2 / 3], [1 / 3, 2 / 3], [.5, .5]],
                               rtol=1e-6)
    # An even window: centred takes one frame more after t than before it.
    np.testing.assert_allclose(ds.moving_average(probabilities, 2, causal=False),
                               [[.5, .5], [0, 1], [.5, .5], [1, 0]])
    assert ds.moving_average(probabilities, 1, causal=True).dtype == np.float32


def test_min_frames_offline_dates_back_online_waits():
    probabilities = one_hot("0110222200")
    offline = ds.SmoothingConfig(min_frames=3, causal=False)
    online = ds.SmoothingConfig(min_frames=3, causal=True)
    # The two-frame burst of 1 is dropped; 2 is confirmed at frame 6. Offline the
    # switch is dated back to frame 4, and the final two-frame 0 is absorbed.
    np.testing.assert_array_equal(ds.decide_labels(probabilities, offline, 0),
                                  labels("0000222222"))
    np.testing.assert_array_equal(ds.decide_labels(probabilities, online, 0),
                                  labels("0000002222"))
    plain = ds.SmoothingConfig()
    np.testing.assert_array_equal(ds.decide_labels(probabilities, plain, 0),
                                  labels("0110222200"))


def test_hysteresis_needs_a_margin_to_switch():
    probabilities = np.array([[.6, .4], [.45, .55], [.3, .7], [.45, .55], [.55, .45]],
                             np.float32)
    np.testing.assert_array_equal(
        ds.decide_labels(probabilities, ds.SmoothingConfig(hysteresis=0.2), 0),
        labels("00111"))
    np.testing.assert_array_equal(
        ds.decide_labels(probabilities, ds.SmoothingConfig(), 0), labels("01110"))


def test_segments_from_labels_with_scores():
    smoothed = np.array([[.9, .1, 0], [.2, .8, 0], [.4, .6, 0], [1, 0, 0], [.3, 0, .7]],
                        np.float32)
    config = ds.SmoothingConfig()
    smoothed_out, frame_labels, scores = ds.label_frames(smoothed, config, 0)
    np.testing.assert_array_equal(frame_labels, labels("01102"))
    np.testing.assert_allclose(scores, [.9, .8, .6, 1, .7], rtol=1e-6)
    assert ds.segments_of(frame_labels, smoothed_out, ("no-action", "a", "b"), 0) == [
        {"start": 1, "end": 2, "action": "a", "score": 0.7},
        {"start": 4, "end": 4, "action": "b", "score": 0.7}]


def test_causal_labels_do_not_look_ahead():
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.ones(3), size=40).astype(np.float32)
    config = ds.SmoothingConfig(smooth=5, min_frames=3, hysteresis=0.1, causal=True)
    _, reference, _ = ds.label_frames(probabilities, config, 0)
    for cut in (7, 20, 33):
        changed = probabilities.copy()
        changed[cut + 1:] = rng.dirichlet(np.ones(3), size=40 - cut - 1)
        _, frame_labels, _ = ds.label_frames(changed, config, 0)
        np.testing.assert_array_equal(frame_labels[:cut + 1], reference[:cut + 1])


@pytest.mark.parametrize("kwargs", [{"smooth": 0}, {"min_frames": 0}, {"hysteresis": 1.0},
                                    {"hysteresis": -0.1}, {"smooth": 2.5}])
def test_smoothing_config_checks(kwargs):
    with pytest.raises(ValueError):
        ds.SmoothingConfig(**kwargs)
