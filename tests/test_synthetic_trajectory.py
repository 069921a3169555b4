"""The trajectory family of the synthetic generator: one hand, sixteen motions.

Also pins the pose family's bytes: adding the family (and TestDetection) must
not change what ``--style pose`` (the default) writes for the same arguments.
"""

import dataclasses
import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from file_trees import tree_bytes

from coreLib.synthetic import generator, trajectory

NEAR_MM = 1000  # the hand is nearer than this, the background farther

# sha256 over (relative path, bytes) of every file the pose family wrote for
# POSE_PIN, computed with the generator as it was before the trajectory family and
# TestDetection existed (commit 09d42ac).
POSE_PIN = generator.SyntheticConfig(
    train_subjects=("LN",), test_subjects=("alvin",), width=40, height=32, reps=1,
    seed=5, frames_per_sequence=14, test_frames_per_sequence=16, detection_sequences=0)
POSE_PIN_SHA256 = "c74ebdb63dd75ed01a8fe7826bd55b56df985d2f6cfec96ff825061c418b1554"
# The same over everything the generator wrote before it was split by concern
# (commit 2f06ca2's parent): POSE_PIN with one TestDetection sequence, and TINY
# (the trajectory family, with TestDetection).
POSE_DETECTION_SHA256 = "a561d65ddaafb5d5a979ca39a77ff724fcdc53910b4ba940912530539d1d0dcd"
TINY_SHA256 = "6cad0a0361bdcc14300dc71798cc2ff5860a89e0403aa16db8d3c76f159ce662"

TINY = generator.SyntheticConfig(
    train_subjects=("LN", "chi"), test_subjects=("alvin",),
    actions=("ui-swipe", "ui-circle", "ui-click"), width=64, height=48, reps=2,
    seed=3, min_len=6, max_len=10, min_gap=2, max_gap=4, frames_per_sequence=30,
    test_frames_per_sequence=24, style="trajectory", detection_sequences=1,
    detection_frames=40, detection_performances=3)

# One performance of 24 frames per action, large enough frames that the hand is
# never cut by the border: the motions' facts are measured on these.
MOTION_CONFIG = generator.SyntheticConfig(
    train_subjects=("chi",), test_subjects=(), width=160, height=120, reps=1,
    min_len=24, max_len=24, min_gap=1, max_gap=1, style="trajectory",
    detection_sequences=0)




def _tree_sha256(files: dict) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    return digest.hexdigest()


def test_pose_family_writes_the_same_bytes_as_before(tmp_path):
    dest = str(tmp_path / "pose")
    generator.generate_dataset(dest, POSE_PIN, progress=False)
    assert _tree_sha256(tree_bytes(dest)) == POSE_PIN_SHA256
    # With TestDetection added, Train/ and Test/ are still the same bytes.
    with_detection = str(tmp_path / "with_detection")
    generator.generate_dataset(with_detection, dataclasses.replace(
        POSE_PIN, detection_sequences=1, detection_frames=30, detection_performances=2),
        progress=False)
    files = tree_bytes(with_detection)
    assert _tree_sha256({name: data for name, data in files.items()
                         if not name.startswith("TestDetection")}) == POSE_PIN_SHA256
    assert any(name.startswith("TestDetection") for name in files)
    assert _tree_sha256(files) == POSE_DETECTION_SHA256


def test_layout_frame_counts_and_labels(tmp_path):
    from coreLib.data import labels
    dest = str(tmp_path / "bii")
    summary = generator.generate_dataset(dest, TINY, progress=False)
    assert summary["splits"] == {
        "Train": {"sequences": 6, "frames": 180, "performances": 12},
        "Test": {"sequences": 3, "frames": 72, "performances": 6},
        "TestDetection": {"sequences": 1, "frames": 40, "performances": 3}}
    assert summary["min_len"] == 6
    files = tree_bytes(dest)
    for plan in generator.plan_dataset(TINY):
        folder = os.path.join(plan.split, plan.subject, plan.action)
        assert sorted(name for name in files if os.path.dirname(name) == folder) == sorted(
            os.path.join(folder, f"{modality}_{index}.png")
            for modality in ("depth", "confi", "color") for index in range(plan.num_frames))
        label_path = os.path.join(dest, plan.split, plan.subject, f"{plan.action}.xml")
        assert labels.read_label_file(label_path) == tuple(
            labels.Interval(pos, length) for pos, length in plan.intervals)
    assert min(length for plan in generator.plan_dataset(TINY)
               for _, length in plan.intervals) == 6


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    first, second = str(tmp_path / "one"), str(tmp_path / "two")
    generator.generate_dataset(first, TINY, workers=1, progress=False)
    generator.generate_dataset(second, TINY, workers=2, progress=False)
    assert tree_bytes(first) == tree_bytes(second)
    assert _tree_sha256(tree_bytes(first)) == TINY_SHA256
    other = str(tmp_path / "other")
    generator.generate_dataset(other, dataclasses.replace(TINY, seed=4), progress=False)
    name = os.path.join("Train", "LN", "ui-swipe", "depth_5.png")
    assert tree_bytes(other)[name] != tree_bytes(first)[name]
    # Same plan (labels) in both families; different pixels.
    pose = dataclasses.replace(TINY, style="pose")
    assert [p.num_frames for p in generator.plan_dataset(pose)] == [
        p.num_frames for p in generator.plan_dataset(TINY)]


def _hand_tracks(config):
    """Per action, over its one performance: ``(F, 6)`` rows of hand centroid x, y
    (pixels), median hand depth (mm), area normalised to 600 mm (pixels),
    long-axis angle from vertical (degrees, positive clockwise on screen) and
    the ratio of the mask's second moments (1: round)."""
    tracks = {}
    for plan in generator.plan_dataset(config):
        pos, length = plan.intervals[0]
        frames = list(generator.render_sequence(config, plan))
        rows = []
        for depth, confi, color in frames[pos:pos + length]:
            hand = (depth > 0) & (depth < NEAR_MM)
            # The same geometry in all three modalities: strong IR return and skin
            # colour exactly where depth sees the hand (dropouts aside).
            valid = depth > 0
            np.testing.assert_array_equal(confi[valid] > 2000, hand[valid])
            ys, xs = np.nonzero(hand)
            x, y = xs.mean(), ys.mean()
            distance = float(np.median(depth[hand]))
            mu20, mu02 = ((xs - x) ** 2).mean(), ((ys - y) ** 2).mean()
            mu11 = ((xs - x) * (ys - y)).mean()
            angle = -0.5 * math.degrees(math.atan2(2 * mu11, mu02 - mu20))
            low, high = np.linalg.eigvalsh([[mu20, mu11], [mu11, mu02]])
            rows.append((x, y, distance, hand.sum() * (distance / 600) ** 2, angle,
                         low / high))
        for index in range(plan.num_frames):
            if not any(p <= index < p + n for p, n in plan.intervals):
                assert not ((frames[index][0] > 0) & (frames[index][0] < NEAR_MM)).any()
        tracks[plan.action] = np.array(rows)
    return tracks


@pytest.fixture(scope="module")
def tracks():
    return _hand_tracks(MOTION_CONFIG)


def _reversals(values: np.ndarray, tolerance: float) -> int:
    """How often a track turns back (steps smaller than tolerance ignored)."""
    steps = np.diff(values)
    signs = np.sign(steps[np.abs(steps) > tolerance])
    return int(np.sum(signs[1:] != signs[:-1]))


def test_the_hand_looks_the_same_in_every_class(tracks):
    assert sorted(tracks) == sorted(generator.ACTIONS)
    areas = [track[:, 3].mean() for track in tracks.values()]
    roundness = [track[:, 5].mean() for track in tracks.values()]
    # Hand size jitter (+-4 %) and finger widths rounded to whole pixels only.
    assert max(areas) / min(areas) < 1.4
    assert max(roundness) - min(roundness) < 0.15
    # In the pose family the same measures tell the classes apart.
    pose = _hand_tracks(dataclasses.replace(MOTION_CONFIG, style="pose"))
    pose_areas = [track[:, 3].mean() for track in pose.values()]
    pose_roundness = [track[:, 5].mean() for track in pose.values()]
    assert max(pose_areas) / min(pose_areas) > 1.8
    assert max(pose_roundness) - min(pose_roundness) > 0.5


def test_each_motion_moves_the_hand_as_designed(tracks):
    height = MOTION_CONFIG.height
    moves = {action: (track[-1, 0] - track[0, 0], track[-1, 1] - track[0, 1],
                      track[-1, 2] - track[0, 2]) for action, track in tracks.items()}
    # Strokes: image x to the right, image y downwards.
    for action, (sign_x, sign_y) in {"ui-swipe": (1, 0), "asl-bathroom": (-1, 0),
                                     "asl-blue": (0, -1), "asl-green": (0, 1),
                                     "asl-z": (1, 0)}.items():
        dx, dy, ddepth = moves[action]
        for move, sign in ((dx, sign_x), (dy, sign_y)):
            if sign:
                assert move * sign > 0.3 * height, (action, move)
            else:
                assert abs(move) < 0.1 * height, (action, move)
        assert abs(ddepth) < 20, action
    # Circles: the signed area of the centroid path (image coordinates, y down) is
    # positive when the hand goes round clockwise on screen; about pi r^2.
    circle = math.pi * (0.17 * height) ** 2
    for action, sense in (("ui-circle", 1), ("asl-yellow", -1)):
        x, y = tracks[action][:, 0], tracks[action][:, 1]
        area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
        assert 0.6 * circle < sense * area < 1.4 * circle, (action, area)
    # Depth: push nearer by about 290 mm, pull back, the dive does both.
    assert moves["ui-screenTap"][2] < -200 and moves["asl-milk"][2] > 200
    assert moves["asl-you"][2] < -200 and moves["asl-you"][1] > 0.2 * height
    for action in ("ui-screenTap", "asl-milk", "ui-click", "ui-doubleclick"):
        track = tracks[action]
        assert np.ptp(track[:, 0]) < 0.05 * height and np.ptp(track[:, 1]) < 0.05 * height
    # Taps: towards the camera and back, once or twice.
    for action, presses in (("ui-click", 1), ("ui-doubleclick", 2)):
        depth = tracks[action][:, 2]
        assert depth.min() < depth[0] - 60 and abs(depth[-1] - depth[0]) < 30
        assert _reversals(depth, 3) == 2 * presses - 1, action
    # Oscillations, two cycles: four turns back; the zig-zag turns three times.
    assert _reversals(tracks["asl-where"][:, 0], 0.5) == 4
    assert np.ptp(tracks["asl-where"][:, 1]) < 0.05 * height
    assert _reversals(tracks["ui-keyTap"][:, 1], 0.5) == 4
    assert _reversals(tracks["asl-z"][:, 1], 0.5) == 3
    assert _reversals(tracks["asl-z"][:, 0], 0.5) == 0
    # Turns about the camera's axis: the twist back and forth, asl-j clockwise.
    twist = tracks["asl-scissors"][:, 4]
    assert np.ptp(twist) > 45 and _reversals(twist, 1.0) == 4
    turn = tracks["asl-j"][:, 4]
    assert turn[-1] - turn[0] > 60 and _reversals(turn, 1.0) == 0
    # Everything else keeps the hand upright.
    for action, track in tracks.items():
        if action not in ("asl-scissors", "asl-j"):
            assert np.ptp(track[:, 4]) < 12, action


def test_every_action_has_its_own_motion():
    kinds = [trajectory.motion_of(action).kind for action in generator.ACTIONS]
    assert len(set(kinds)) == 16
    # A name outside the sixteen gets one of their motions, always the same one.
    assert (trajectory.motion_of("my-gesture")
            == trajectory.motion_of("my-gesture"))
    assert trajectory.motion_of("my-gesture") in trajectory.MOTIONS.values()


def test_style_is_checked_by_the_config_and_the_cli(repo_root, tmp_path):
    with pytest.raises(ValueError, match="style must be one of pose, trajectory, got 'x'"):
        dataclasses.replace(TINY, style="x")
    done = subprocess.run([sys.executable, "-m", "coreLib.synthetic", str(tmp_path / "x"),
                           "--style", "hands"], cwd=repo_root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--style: invalid choice: 'hands'" in done.stderr
    assert not os.path.exists(tmp_path / "x")
    dest = str(tmp_path / "bii")
    done = subprocess.run([sys.executable, "-m", "coreLib.synthetic", dest, "--style",
                           "trajectory", "--train-subjects", "LN", "--test-subjects", "",
                           "--actions", "ui-swipe", "--size", "32x32", "--reps", "1",
                           "--frames-per-sequence", "12", "--detection-sequences", "0",
                           "--workers", "1"], cwd=repo_root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Train 1 sequences / 12 frames; 32x32; trajectory;" in done.stdout
    assert sorted(os.listdir(dest)) == ["Train"]
