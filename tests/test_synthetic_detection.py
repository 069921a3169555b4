"""The synthetic TestDetection split: long sequences of unseen subjects, several
actions each, in both families; the published split's plan; main.py ignores it."""

import dataclasses
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from coreLib.data import labels
from coreLib.synthetic import generator, detection
from coreLib.errors import ActrecogError

NEAR_MM = 1000  # the hand is nearer than this, the background farther

TINY = generator.SyntheticConfig(
    train_subjects=("LN", "chi"), test_subjects=("alvin",),
    actions=("asl-blue", "ui-swipe", "ui-click", "asl-z"), width=48, height=40, reps=1,
    min_len=6, max_len=10, min_gap=2, max_gap=4, frames_per_sequence=16,
    detection_sequences=2, detection_frames=70, detection_performances=5)


@pytest.mark.parametrize("style", generator.STYLES)
def test_detection_sequences_hold_their_labelled_actions(tmp_path, style):
    config = dataclasses.replace(TINY, style=style)
    dest = str(tmp_path / "bii")
    summary = generator.generate_dataset(dest, config, progress=False)
    assert summary["splits"]["TestDetection"] == {"sequences": 2, "frames": 140,
                                                  "performances": 10}
    split_dir = os.path.join(dest, "TestDetection")
    assert sorted(os.listdir(split_dir)) == ["alvin_test", "alvin_test.xml",
                                             "connie", "connie.xml"]
    for plan in detection.plan_detection(config):
        assert plan.subject not in config.train_subjects + config.test_subjects
        folder = os.path.join(split_dir, plan.name)
        assert sorted(os.listdir(folder)) == sorted(
            f"{modality}_{index}.png" for modality in ("depth", "confi", "color")
            for index in range(70))
        items = labels.read_action_label_file(os.path.join(split_dir, f"{plan.name}.xml"),
                                              config.actions)
        assert [(item.pos, item.len, item.action) for item in items] == list(
            plan.label_items)
        actions = [item.action for item in items]
        assert len(actions) == 5 and len(set(actions)) == 4  # all four, then one again
        assert all(first != second for first, second in zip(actions, actions[1:]))
        # No-action gaps before, between and after; lengths as in Train/Test.
        previous_end = 0
        for item in items:
            assert item.pos - previous_end >= config.min_gap
            assert config.min_len <= item.len <= config.max_len
            previous_end = item.end
        assert 70 - previous_end >= config.min_gap
        # The hand is there exactly during the performances, in every modality.
        labelled = np.zeros(70, bool)
        for item in items:
            labelled[item.pos:item.end] = True
        for index in range(70):
            depth = cv2.imread(os.path.join(folder, f"depth_{index}.png"),
                               cv2.IMREAD_UNCHANGED)
            confi = cv2.imread(os.path.join(folder, f"confi_{index}.png"),
                               cv2.IMREAD_UNCHANGED)
            assert depth.dtype == confi.dtype == np.uint16 and depth.shape == (40, 48)
            hand = (depth > 0) & (depth < NEAR_MM)
            assert hand.any() == labelled[index], (plan.name, index)
            valid = depth > 0
            np.testing.assert_array_equal(confi[valid] > 2000, hand[valid])


def test_detection_bytes_do_not_depend_on_the_workers(tmp_path):
    config = dataclasses.replace(TINY, train_subjects=("LN",), test_subjects=(),
                                 actions=TINY.actions[:2], style="trajectory")
    trees = []
    for workers in (1, 2):
        dest = str(tmp_path / f"w{workers}")
        generator.generate_dataset(dest, config, workers=workers, progress=False)
        tree = {}
        for folder, _, names in os.walk(os.path.join(dest, "TestDetection")):
            for name in names:
                with open(os.path.join(folder, name), "rb") as handle:
                    tree[os.path.relpath(os.path.join(folder, name), dest)] = handle.read()
        trees.append(tree)
    assert trees[0] == trees[1] and len(trees[0]) == 2 * (3 * 70 + 1)


def test_full_size_plan_is_the_published_split():
    config = generator.full_size_config(style="trajectory")
    plans = detection.plan_detection(config)  # plans only; nothing rendered
    assert [(plan.name, plan.num_frames) for plan in plans] == [
        ("alvin_test", 1064), ("connie", 1894), ("dale0", 2386), ("dale1", 2455),
        ("lam", 2313), ("nguyen", 1634), ("prashanth", 1432), ("vishnu", 2503),
        ("xiaowei_test", 1727), ("zhaohe", 2129)]
    assert sum(plan.num_frames for plan in plans) == 19_537
    assert sum(len(plan.intervals) for plan in plans) == 139
    assert all(10 <= len(plan.intervals) <= 20 for plan in plans)
    subjects = {plan.subject for plan in plans}
    assert len(subjects) == 9 and not subjects & set(generator.TRAIN_SUBJECTS
                                                     + generator.TEST_SUBJECTS)
    for plan in plans:
        ends = [pos + length for pos, length in plan.intervals]
        assert plan.intervals[0][0] >= config.min_gap
        assert all(pos >= end + config.min_gap
                   for (pos, _), end in zip(plan.intervals[1:], ends))
        assert plan.num_frames - ends[-1] >= config.min_gap
        assert all(6 <= length <= 48 for _, length in plan.intervals)
        assert all(a != b for a, b in zip(plan.actions, plan.actions[1:]))
        assert len(set(plan.actions)) == min(16, len(plan.actions))
    # The Train/Test part of --full-size is unchanged, and TestDetection can be left out.
    assert len(generator.plan_dataset(config)) == 288
    assert detection.plan_detection(
        generator.full_size_config(detection=False)) == []


@pytest.mark.parametrize("changes, message", [
    ({"detection_sequences": 11}, "detection_sequences must be at most 10"),
    ({"detection_frames": 20}, "detection sequence alvin_test: frames = 20 is too small"),
    ({"detection_performances": 0}, "performances must be a positive integer"),
    ({"detection_plan": (("LN7", 100, 3),)}, "its subject 'LN' is a Train or Test subject"),
    ({"detection_plan": (("x", 100, 3), ("x", 90, 3))}, "names repeated: x"),
    ({"detection_plan": (("a/b", 100, 3),)}, "bad detection sequence name"),
])
def test_config_rejects_bad_detection_values(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **changes)


def test_existing_detection_split_is_refused_unless_overwrite(tmp_path):
    config = dataclasses.replace(TINY, train_subjects=("LN",), test_subjects=(),
                                 actions=("ui-click",), detection_sequences=0)
    dest = tmp_path / "bii"
    (dest / "TestDetection").mkdir(parents=True)
    with pytest.raises(ActrecogError, match="already holds TestDetection/"):
        generator.generate_dataset(str(dest), config, progress=False)
    generator.generate_dataset(str(dest), config, progress=False, overwrite=True)
    assert sorted(os.listdir(dest)) == ["Train"]


def test_cli_detection_options(repo_root, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "coreLib.synthetic", *args],
                              cwd=repo_root, capture_output=True, text=True, timeout=120)
    dest = str(tmp_path / "bii")
    done = run(dest, "--train-subjects", "LN", "--test-subjects", "", "--actions",
               "ui-click,ui-swipe", "--size", "32x32", "--reps", "1",
               "--frames-per-sequence", "12", "--detection-sequences", "1",
               "--detection-frames", "40", "--detection-performances", "3", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert ("Train 2 sequences / 24 frames, TestDetection 1 sequences / 40 frames"
            in done.stdout)
    assert len(os.listdir(os.path.join(dest, "TestDetection", "alvin_test"))) == 120
    bad = run(str(tmp_path / "x"), "--detection-sequences", "12")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "detection_sequences must be at most 10" in bad.stderr
    assert not os.path.exists(tmp_path / "x")


def test_main_py_ignores_the_detection_split(tmp_path):
    from coreLib.preprocessing import preprocess
    src = str(tmp_path / "bii")
    config = dataclasses.replace(TINY, style="trajectory")
    generator.generate_dataset(src, config, progress=False)

    def outputs(dest):
        preprocess.run_preprocessing(preprocess.PreprocessConfig(
            src=src, dest=str(dest), image_dim=8, modality="depth",
            batch_size=4, workers=1, eval_subjects=("chi",)),
            progress=False, warn=lambda message: None)
        files = {}
        for folder, _, names in os.walk(os.path.join(dest, "DataSet")):
            for name in names:
                with open(os.path.join(folder, name), "rb") as handle:
                    files[os.path.relpath(os.path.join(folder, name), dest)] = handle.read()
        return files

    with_detection = outputs(tmp_path / "one")
    os.rename(os.path.join(src, "TestDetection"), str(tmp_path / "moved"))
    assert outputs(tmp_path / "two") == with_detection
    assert not any("alvin_test" in data.decode("latin-1")
                   for name, data in with_detection.items() if name.endswith(".json"))
