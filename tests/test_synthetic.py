"""The synthetic dataset generator: exact BII layout, labels, pixels, determinism."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import cv2
import numpy as np
import pytest

from file_trees import tree_bytes

from coreLib.synthetic import generator
from coreLib.errors import ActrecogError

TINY = generator.SyntheticConfig(
    train_subjects=("LN", "chi"), test_subjects=("alvin",),
    actions=("asl-blue", "ui-swipe", "ui-click"), width=64, height=48, reps=2,
    seed=3, min_len=6, max_len=10, min_gap=2, max_gap=4,
    frames_per_sequence=30, test_frames_per_sequence=24, detection_sequences=0)
MODALITIES = ("depth", "confi", "color")
NEAR_MM = 1000  # the hand is nearer than this, the background farther




def _intervals(xml_path: str) -> list:
    root = ElementTree.parse(xml_path).getroot()
    assert root.tag == "opencv_storage"
    (label,) = list(root)
    return [(int(item.find("pos").text), int(item.find("len").text)) for item in label]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("synthetic") / "bii")
    summary = generator.generate_dataset(dest, TINY, workers=1, progress=False)
    return dest, summary


def test_layout_is_exactly_the_bii_layout(tiny):
    dest, summary = tiny
    expected = set()
    for split, subjects, frames in (("Train", TINY.train_subjects, 30),
                                    ("Test", TINY.test_subjects, 24)):
        for subject in subjects:
            for action in TINY.actions:
                expected.add(os.path.join(split, subject, f"{action}.xml"))
                expected.update(os.path.join(split, subject, action, f"{modality}_{index}.png")
                                for modality in MODALITIES for index in range(frames))
    assert set(tree_bytes(dest)) == expected
    assert summary["splits"] == {
        "Train": {"sequences": 6, "frames": 180, "performances": 12},
        "Test": {"sequences": 3, "frames": 72, "performances": 6}}
    assert (summary["sequences"], summary["frames"], summary["min_len"]) == (9, 252, 6)


def test_label_files_are_opencv_filestorage_xml(tiny):
    dest, _ = tiny
    plans = {(plan.split, plan.subject, plan.action): plan
             for plan in generator.plan_dataset(TINY)}
    lengths = []
    for (split, subject, action), plan in plans.items():
        path = os.path.join(dest, split, subject, f"{action}.xml")
        with open(path) as handle:
            text = handle.read()
        assert text.splitlines()[:3] == ['<?xml version="1.0"?>', "<opencv_storage>",
                                         "<label>"]
        assert text == generator.label_xml(plan.intervals)
        intervals = _intervals(path)
        assert intervals == list(plan.intervals)
        assert len(intervals) == TINY.reps
        storage = cv2.FileStorage(path, cv2.FILE_STORAGE_READ)
        node = storage.getNode("label")
        read_back = [(int(node.at(i).getNode("pos").real()),
                      int(node.at(i).getNode("len").real())) for i in range(node.size())]
        storage.release()
        assert read_back == intervals
        # No-action frames before, between and after the performances.
        frames = plan.num_frames
        previous_end = 0
        for pos, length in intervals:
            assert pos - previous_end >= TINY.min_gap
            assert TINY.min_len <= length <= TINY.max_len
            previous_end = pos + length
        assert frames - previous_end >= TINY.min_gap
        lengths += [length for _, length in intervals]
    assert min(lengths) == 6
    assert len(set(lengths)) > 1


def test_frames_have_the_spec_bit_depths_and_channels(tiny):
    dest, _ = tiny
    folder = os.path.join(dest, "Test", "alvin", "ui-swipe")
    for index in (0, 23):
        depth = cv2.imread(os.path.join(folder, f"depth_{index}.png"), cv2.IMREAD_UNCHANGED)
        confi = cv2.imread(os.path.join(folder, f"confi_{index}.png"), cv2.IMREAD_UNCHANGED)
        color = cv2.imread(os.path.join(folder, f"color_{index}.png"), cv2.IMREAD_UNCHANGED)
        assert (depth.dtype, depth.shape) == (np.uint16, (48, 64))
        assert (confi.dtype, confi.shape) == (np.uint16, (48, 64))
        assert (color.dtype, color.shape) == (np.uint8, (48, 64, 3))


def test_hand_is_drawn_in_every_modality_only_during_performances(tiny):
    dest, _ = tiny
    for plan in generator.plan_dataset(TINY):
        folder = os.path.join(dest, plan.split, plan.subject, plan.action)
        inside = np.zeros(plan.num_frames, bool)
        for pos, length in plan.intervals:
            inside[pos:pos + length] = True
        empty_color = None
        for index in range(plan.num_frames):
            depth = cv2.imread(os.path.join(folder, f"depth_{index}.png"),
                               cv2.IMREAD_UNCHANGED).astype(np.int64)
            confi = cv2.imread(os.path.join(folder, f"confi_{index}.png"),
                               cv2.IMREAD_UNCHANGED).astype(np.int64)
            color = cv2.imread(os.path.join(folder, f"color_{index}.png")).astype(np.int64)
            hand = (depth > 0) & (depth < NEAR_MM)
            valid = depth > 0
            # IR return: strong exactly where the hand is near, weak elsewhere.
            np.testing.assert_array_equal(confi[valid] > 2000, hand[valid])
            assert np.all(depth[hand] >= 400) and np.all(depth[valid & ~hand] >= 1100)
            if inside[index]:
                assert hand.mean() > 0.05, (plan, index)
            else:
                assert not hand.any(), (plan, index)
                if empty_color is None:
                    empty_color = color
                else:  # the scene without a hand only differs by sparse speckles
                    assert np.mean(np.any(color != empty_color, axis=2)) < 0.05
        # The hand is visible in colour where depth says it is.
        index = plan.intervals[0][0]
        color = cv2.imread(os.path.join(folder, f"color_{index}.png")).astype(np.int64)
        depth = cv2.imread(os.path.join(folder, f"depth_{index}.png"), cv2.IMREAD_UNCHANGED)
        hand = (depth > 0) & (depth < NEAR_MM)
        changed = np.any(np.abs(color - empty_color) > 20, axis=2)
        assert (changed & hand).sum() > 0.8 * hand.sum()


def test_actions_look_different():
    config = generator.SyntheticConfig(train_subjects=("chi",), test_subjects=(),
                                       width=64, height=48, reps=1, min_len=12,
                                       max_len=12, min_gap=1, max_gap=1)
    mean_masks = {}
    for plan in generator.plan_dataset(config):
        start, length = plan.intervals[0]
        frames = list(generator.render_sequence(config, plan))[start:start + length]
        masks = [(depth > 0) & (depth < NEAR_MM) for depth, _, _ in frames]
        mean_masks[plan.action] = np.mean(masks, axis=0)
    assert len(mean_masks) == 16
    names = sorted(mean_masks)
    for first in range(len(names)):
        for second in range(first + 1, len(names)):
            difference = np.abs(mean_masks[names[first]] - mean_masks[names[second]])
            assert difference.mean() > 0.02, (names[first], names[second])


def test_same_seed_same_bytes_whatever_the_workers(tiny, tmp_path):
    dest, _ = tiny
    again = str(tmp_path / "again")
    generator.generate_dataset(again, TINY, workers=2, progress=False)
    assert tree_bytes(again) == tree_bytes(dest)
    other = str(tmp_path / "other")
    config = generator.SyntheticConfig(**{**TINY.__dict__, "seed": 4,
                                          "train_subjects": ("LN",), "test_subjects": ()})
    generator.generate_dataset(other, config, workers=1, progress=False)
    name = os.path.join("Train", "LN", "asl-blue", "color_0.png")
    assert tree_bytes(other)[name] != tree_bytes(dest)[name]


def test_existing_splits_are_refused_unless_overwrite(tmp_path):
    config = generator.SyntheticConfig(train_subjects=("LN",), test_subjects=(),
                                       actions=("ui-click",), width=32, height=32,
                                       reps=1, frames_per_sequence=12)
    dest = str(tmp_path / "bii")
    generator.generate_dataset(dest, config, progress=False)
    stale = os.path.join(dest, "Train", "LN", "stale.xml")
    open(stale, "w").close()
    with pytest.raises(ActrecogError, match="already holds Train"):
        generator.generate_dataset(dest, config, progress=False)
    assert os.path.exists(stale)
    generator.generate_dataset(dest, config, progress=False, overwrite=True)
    assert not os.path.exists(stale)
    assert len(os.listdir(os.path.join(dest, "Train", "LN", "ui-click"))) == 36


def test_full_size_config_matches_the_published_totals():
    config = generator.full_size_config()
    plans = generator.plan_dataset(config)
    assert len(plans) == 288
    frames = {"Train": 0, "Test": 0}
    per_subject, per_action = {}, {}
    for plan in plans:
        frames[plan.split] += plan.num_frames
        per_subject[plan.subject] = per_subject.get(plan.subject, 0) + plan.num_frames
        if plan.split == "Train":
            per_action[plan.action] = per_action.get(plan.action, 0) + plan.num_frames
    assert frames == {"Train": 112_640, "Test": 22_025}
    assert {name: per_subject[name] for name in generator.TEST_SUBJECTS} == {
        "alvin": 8_239, "etienne": 6_119, "xiaowei": 7_667}
    assert (min(per_action.values()), max(per_action.values())) == (5_547, 8_667)
    assert min(length for plan in plans for _, length in plan.intervals) == 6
    assert sorted(per_subject) == sorted(generator.TRAIN_SUBJECTS + generator.TEST_SUBJECTS)
    assert len(generator.TRAIN_SUBJECTS) == 15 and len(generator.ACTIONS) == 16


def test_plan_honours_fixed_frame_counts():
    for frames in (TINY.fewest_frames, 31, 200):
        config = generator.SyntheticConfig(**{**TINY.__dict__, "frames_per_sequence": frames})
        for index, plan in enumerate(generator.plan_dataset(config)):
            if plan.split == "Train":
                assert plan.num_frames == frames
            assert all(length >= 6 for _, length in plan.intervals)
            if index == 0:
                assert plan.intervals[0][1] == 6


@pytest.mark.parametrize("changes, message", [
    ({"frames_per_sequence": 12}, "too small"),
    ({"train_subjects": ("LN", "LN")}, "repeated"),
    ({"test_subjects": ("LN",)}, "both Train and Test"),
    ({"actions": ()}, "no actions"),
    ({"max_len": 5}, "below min_len"),
    ({"width": 8}, "width"),
    ({"actions": ("a/b",)}, "bad action name"),
    ({"sequence_frames": (("nobody", "asl-blue", 40),)}, "unknown subject"),
])
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        generator.SyntheticConfig(**{**TINY.__dict__, **changes})


def _run_cli(repo_root, *args):
    return subprocess.run([sys.executable, "-m", "coreLib.synthetic", *args],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)


def test_cli_writes_a_dataset_and_reports_bad_input_in_one_line(repo_root, tmp_path):
    dest = str(tmp_path / "bii")
    args = [dest, "--train-subjects", "LN,chi", "--test-subjects", "alvin",
            "--actions", "ui-click", "--size", "40x30", "--reps", "1",
            "--frames-per-sequence", "12", "--workers", "2"]
    done = _run_cli(repo_root, *args)
    assert done.returncode == 0, done.stderr
    assert "Train 2 sequences / 24 frames, Test 1 sequences / 12 frames" in done.stdout
    color = cv2.imread(os.path.join(dest, "Test", "alvin", "ui-click", "color_11.png"),
                       cv2.IMREAD_UNCHANGED)
    assert color.shape == (30, 40, 3)
    again = _run_cli(repo_root, *args)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "already holds Train and Test" in again.stderr
    bad = _run_cli(repo_root, str(tmp_path / "x"), "--size", "40by30")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "'40by30' is not WIDTHxHEIGHT" in bad.stderr
    small = _run_cli(repo_root, str(tmp_path / "y"), "--frames-per-sequence", "5")
    assert small.returncode == 2
    assert small.stderr.count("\n") == 1 and "too small" in small.stderr
    assert not os.path.exists(str(tmp_path / "y"))


def _hand_areas(config, plan) -> list:
    """Pixels nearer than NEAR_MM in each frame of a sequence (the hand)."""
    return [int((depth[depth > 0] < NEAR_MM).sum())
            for depth, _, _ in generator.render_sequence(config, plan)]


def test_hand_scale_draws_larger_hands_on_the_same_plan():
    import dataclasses
    # A frame large enough that the bigger hand is not cut by its border.
    normal = dataclasses.replace(TINY, width=160, height=120)
    bigger = dataclasses.replace(normal, hand_scale=1.5)
    (plan,) = [p for p in generator.plan_dataset(normal)
               if (p.split, p.subject, p.action) == ("Train", "LN", "asl-blue")]
    assert plan in generator.plan_dataset(bigger)  # labels and frames unchanged
    areas, larger = _hand_areas(normal, plan), _hand_areas(bigger, plan)
    labelled = {pos + offset for pos, length in plan.intervals for offset in range(length)}
    for frame, (area, large) in enumerate(zip(areas, larger)):
        if frame in labelled:
            # 1.5 times the size: about 2.25 times the area (pixel rounding aside).
            assert 1.9 < large / area < 2.6, (frame, area, large)
        else:
            assert area == large == 0


@pytest.mark.parametrize("value", [0.1, 5.0, "2"])
def test_hand_scale_out_of_range_is_refused(value):
    import dataclasses
    with pytest.raises(ValueError, match="hand_scale"):
        dataclasses.replace(TINY, hand_scale=value)


def test_scaled_hands_keep_their_fingertips_inside_the_frame():
    import dataclasses
    bigger = dataclasses.replace(TINY, width=160, height=120, hand_scale=1.5)
    (plan,) = [p for p in generator.plan_dataset(bigger)
               if (p.split, p.subject, p.action) == ("Train", "LN", "asl-blue")]
    labelled = {pos + offset for pos, length in plan.intervals for offset in range(length)}
    for frame, (depth, _, _) in enumerate(generator.render_sequence(bigger, plan)):
        hand = (depth > 0) & (depth < NEAR_MM)
        if frame in labelled:
            # The raised fingers (asl-blue: four up) end below the top row.
            assert hand.any() and not hand[0].any(), frame


@pytest.mark.parametrize("style", ["pose", "trajectory"])
def test_real_hand_size_puts_40_to_60_pixel_hands_at_arms_length(style):
    """--hand-size real: the camera model's hands span 40-60 pixels of 320x240 (the
    median over performances), lie 400-550 mm away (the median; taps and pushes come
    nearer),
    and the background boxes stay behind the arm's reach."""
    import dataclasses
    real = dataclasses.replace(TINY, width=320, height=240, hand_size="real", style=style,
                               actions=("asl-blue", "ui-swipe", "ui-click", "asl-z"),
                               train_subjects=("LN",), test_subjects=("alvin",))
    extents, depths = [], []
    for plan in generator.plan_dataset(real):
        for depth, _, _ in generator.render_sequence(real, plan):
            hand = (depth > 0) & (depth < 700)
            if hand.sum() > 30:
                rows, cols = np.nonzero(hand)
                extents.append(max(np.ptp(rows), np.ptp(cols)) + 1)
                depths.append(int(np.median(depth[hand])))
            background = depth[(depth > 0) & ~hand]
            assert background.min() >= 850
    assert 40 <= np.median(extents) <= 60
    assert 400 <= np.median(depths) <= 550 and min(depths) > 250


def test_real_hand_size_takes_no_hand_scale():
    import dataclasses
    with pytest.raises(ValueError, match="hand_scale applies to the large hands only"):
        dataclasses.replace(TINY, hand_size="real", hand_scale=1.5)
    with pytest.raises(ValueError, match="hand_size"):
        dataclasses.replace(TINY, hand_size="small")
