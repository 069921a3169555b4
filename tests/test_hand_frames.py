"""Hand-centred frames are the same bytes wherever they are made: main.py's records,
score.py's reader and detect.py's frame stream (coreLib.data.hand_crop)."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from coreLib.data import frames, hand_crop, manifest as manifest_lib, window_lists
from coreLib.detection import sources
from coreLib.inference import frame_reader
from coreLib.preprocessing import preprocess, records
from coreLib.synthetic import generator

IMAGE_DIM = 16
# Two train subjects (one for Eval), real-size hands in 96x72 frames.
TINY_REAL = generator.SyntheticConfig(
    train_subjects=("aiyang", "LN"), test_subjects=("alvin",),
    actions=("asl-blue", "ui-swipe"), width=96, height=72, reps=1, min_len=6,
    max_len=8, min_gap=3, max_gap=4, frames_per_sequence=16, hand_size="real",
    detection_sequences=0)


@pytest.fixture(scope="module")
def real_source(tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("real_hands"))
    generator.generate_dataset(folder, TINY_REAL, workers=1, progress=False)
    return folder


def _run_main(source: str, dest: str, modality: str,
              path: str = hand_crop.PATH_NONE) -> preprocess.PreprocessSummary:
    config = preprocess.PreprocessConfig(
        src=source, dest=dest, image_dim=IMAGE_DIM, modality=modality, batch_size=1,
        shard_size=64, workers=1, frames=hand_crop.HAND_FRAMES,
        hand_crop=hand_crop.HandCropConfig(path=path))
    return preprocess.run_preprocessing(config, progress=False)


def _records(dataset_dir: str, found: manifest_lib.Manifest):
    """``(subject, action, start, pixels (L, D, D, C), boxes (L, 4))`` per record."""
    out = []
    for split in manifest_lib.RECORD_SPLITS:
        for shard in found.splits[split].shards:
            for raw in tf.data.TFRecordDataset(os.path.join(dataset_dir, shard.path)):
                feature = tf.train.Example.FromString(raw.numpy()).features.feature
                pixels = np.frombuffer(feature[records.PIXELS_KEY].bytes_list.value[0],
                                       "<u2").reshape(found.window_shape)
                boxes = np.frombuffer(feature[records.CROP_KEY].bytes_list.value[0],
                                      "<f4").reshape(found.seq_len, 4)
                out.append((feature[records.SUBJECT_KEY].bytes_list.value[0].decode(),
                            feature[records.ACTION_KEY].bytes_list.value[0].decode(),
                            int(feature[records.START_KEY].int64_list.value[0]),
                            pixels, boxes))
    return out


@pytest.mark.parametrize("modality,path", [("depth", "none"), ("confi", "none"),
                                           ("depth", "motion")])
def test_main_score_and_stream_give_the_same_pixels_and_boxes(real_source, tmp_path,
                                                              modality, path):
    summary = _run_main(real_source, str(tmp_path / "out"), modality, path)
    found = summary.manifest
    dataset_dir = str(tmp_path / "out" / "DataSet")
    with open(os.path.join(dataset_dir, manifest_lib.MANIFEST_NAME)) as handle:
        stored = json.load(handle)
    assert stored["frames"] == "hand"
    assert stored["channels"] == (4 if path == "motion" else 1)
    assert stored["hand_crop"] == json.loads(json.dumps(
        __import__("dataclasses").asdict(hand_crop.HandCropConfig(path=path))))
    windows = _records(dataset_dir, found)
    assert len(windows) == sum(found.splits[s].num_records for s in ("Train", "Eval")) > 10
    if path == "motion":
        # Per frame three constant planes after the crop; the strokes move them.
        steps = np.stack([pixels[:, :, :, 1:] for *_, pixels, _ in windows])
        np.testing.assert_array_equal(steps, np.broadcast_to(steps[:, :, :1, :1], steps.shape))
        assert (steps != 2048).any() and (steps == 2048).any()

    # The summary counts the decoded frames where the tracker found no hand.
    without_hand = 0
    for folder in sorted(glob.glob(os.path.join(real_source, "Train", "*", "*"))):
        tracker = hand_crop.HandTracker()
        for index in range(len(glob.glob(os.path.join(folder, "depth_*.png")))):
            tracker.push(frames.read_frame(folder, "depth", index))
        without_hand += tracker.frames_without_hand
    assert summary.frames_without_hand == without_hand > 0
    assert f" frames decoded ({without_hand} without a hand);" in summary.line()

    # score.py's reader, over the same windows (out of order: it sorts them).
    listed = [window_lists.ListedWindow(
        os.path.join(real_source, "Train", subject, action), start,
        start + found.seq_len - 1, 0) for subject, action, start, _, _ in windows]
    boxes = {}
    read = {}
    for numbers, pixels, _, _ in frame_reader.iterate_batches(listed[::-1], found, 5,
                                                              boxes=boxes):
        for number, window in zip(numbers.tolist(), pixels):
            read[len(listed) - 1 - number] = window
    for number, (_, _, start, pixels, record_boxes) in enumerate(windows):
        np.testing.assert_array_equal(read[number], pixels)
        path = listed[number].path
        np.testing.assert_array_equal(
            np.stack([boxes[(path, start + k)].as_array() for k in range(found.seq_len)]),
            record_boxes)

    # detect.py's frame stream: each whole sequence, frame by frame.
    for subject, action in {(w[0], w[1]) for w in windows}:
        path = os.path.join(real_source, "Train", subject, action)
        source = sources.SequenceSource(f"{subject}_{action}", path, False, 16)
        stream = np.concatenate(list(sources.png_frame_chunks(source, found, 4, 2)))
        for window_subject, window_action, start, pixels, _ in windows:
            if (window_subject, window_action) == (subject, action):
                np.testing.assert_array_equal(stream[start:start + found.seq_len], pixels)


def test_hand_crops_centre_the_hand(real_source, tmp_path):
    """The crops hold the hand's pixels: most of a 16x16 crop is nearer than the
    wall in frames with a hand, against a few pixels of the whole frame."""
    found = _run_main(real_source, str(tmp_path / "out"), "depth").manifest
    path = os.path.join(real_source, "Train", "aiyang", "asl-blue")
    source = sources.SequenceSource("s", path, False, 16)
    cropped = np.concatenate(list(sources.png_frame_chunks(source, found, 16, 1)))
    full = manifest_lib.Manifest(**{**found.__dict__, "frames": "full", "hand_crop": None})
    whole = np.concatenate(list(sources.png_frame_chunks(source, full, 16, 1)))
    (pos, length), = generator.plan_sequence(TINY_REAL, "Train", "aiyang",
                                             "asl-blue", shortest=True).intervals
    late = slice(pos + 3, pos + length)          # the tracker has caught up
    near = lambda frames: ((frames > 0) & (frames < 700)).mean()  # noqa: E731
    assert near(cropped[late]) > 4 * near(whole[late])


def test_frames_hand_with_offline_augment_is_refused():
    with pytest.raises(ValueError, match="offline-augment"):
        preprocess.PreprocessConfig(src="a", dest="b", frames="hand", offline_augment=True)


def _hand_manifest(modality: str = "depth") -> manifest_lib.Manifest:
    return manifest_lib.Manifest(("a", "no-action"), 6, 32, 1, modality, "uint16", False,
                                 {}, "", frames=hand_crop.HAND_FRAMES)


def test_every_record_of_the_model_says_its_frames(tmp_path):
    """run_config.json, export.json and the manifest carry ``frames``; full frames
    keep 1.0.x's keys (none); every tool's model spec reads it back."""
    from coreLib.export import export_model
    from coreLib.inference import model_loading, model_spec
    from coreLib.training import trainer

    hand = _hand_manifest()
    config = trainer.TrainConfig(dataset_dir="d", model_name="CausalMobileNet",
                                 model_dir=str(tmp_path))
    run_config = trainer.run_config_of(config, hand)
    assert (run_config["frames"], run_config["hand_crop"]) == ("hand", hand.hand_crop)
    full = manifest_lib.Manifest(**{**hand.__dict__, "frames": "full", "hand_crop": None})
    assert "frames" not in trainer.run_config_of(config, full)
    assert "frames" not in full.to_json() and hand.to_json()["frames"] == "hand"
    assert manifest_lib.Manifest.from_json(hand.to_json()) == hand

    with open(tmp_path / manifest_lib.RUN_CONFIG_NAME, "w") as handle:
        json.dump(run_config, handle)
    weights = str(tmp_path / "CausalMobileNet.weights.h5")
    assert model_spec.resolve_model_spec(weights).frames == "hand"
    assert export_model.window_description("CausalMobileNet", weights, None).frames == "hand"
    # A DataSet of the other kind of frames is refused by score.py.
    dataset_dir = tmp_path / "DataSet"
    dataset_dir.mkdir()
    manifest_lib.write_manifest(str(dataset_dir), full)
    with pytest.raises(Exception, match="trained on hand frames"):
        model_loading.manifest_for_model(str(dataset_dir), weights)


def test_detection_refuses_a_video_for_a_hand_model(tmp_path):
    video = tmp_path / "clip.avi"
    video.write_bytes(b"not looked at")
    colour = manifest_lib.Manifest(("a", "no-action"), 6, 32, 3, "color", "uint8", False,
                                   {}, "", frames=hand_crop.HAND_FRAMES)
    with pytest.raises(Exception, match="hand-centred windows, which need depth frames"):
        sources.discover_sources(str(video), colour)


def test_frames_csv_holds_the_crop_boxes():
    from coreLib.detection import outputs, results
    source = sources.SequenceSource("s", "/x", False, 2)
    detection = results.SequenceDetection(
        source, np.zeros((2, 2), np.float32), np.array([[0.25, 0.75], [1, 0]], np.float32),
        np.array([1, 0]), np.array([0.75, 1.0], np.float32), [], 0.0, 2,
        crop_boxes=np.array([[80, 60, 94.25, 451.5], [81, 61, 94, 450]], np.float32))
    assert outputs.frames_csv(detection, ("a", "no-action")).decode().splitlines() == [
        "frame,label,score,a,no-action,crop_x,crop_y,crop_side,crop_depth_mm",
        "0,no-action,0.750000,0.250000,0.750000,80.00,60.00,94.25,451.50",
        "1,a,1.000000,1.000000,0.000000,81.00,61.00,94.00,450.00"]


@pytest.mark.slow
def test_live_equals_online_for_a_hand_centred_model(tmp_path):
    """A hand-centred depth model with motion channels: the LiveDetector API, fed
    the frames one by one, gives detect.py --mode online's per-frame CSV (labels,
    probabilities and crop boxes) byte for byte. (Without a path the frames are
    the same function's first channel: hand_crop.model_frame.)"""
    import live_model
    from coreLib.cli import run_main
    from coreLib.data import frames
    from coreLib.detection import outputs
    from coreLib.detection.live import LiveDetector
    from coreLib.synthetic import detection
    import detect

    config = generator.SyntheticConfig(
        train_subjects=("LN",), test_subjects=("alvin",), actions=live_model.CLASSES[:-1],
        width=96, height=72, reps=1, min_len=6, max_len=10, min_gap=2, max_gap=4,
        frames_per_sequence=16, detection_sequences=1, detection_frames=40,
        detection_performances=3, hand_size="real")
    plan = detection.plan_detection(config)[0]
    # The dataset in its own folder: --out may not lie inside it (issue 21).
    detection.write_detection_sequence(str(tmp_path / "data"), config, plan)
    folder = os.path.join(str(tmp_path / "data"), "TestDetection", plan.name)
    depth = [frames.read_frame(folder, "depth", index) for index in range(plan.num_frames)]
    hand_config = hand_crop.HandCropConfig(path=hand_crop.PATH_MOTION)
    tracker = hand_crop.HandTracker(hand_config)
    crops = np.stack([hand_crop.model_frame(frame, tracker.push(frame), frame.shape,
                                            live_model.IMAGE_DIM, hand_config)
                      for frame in depth])
    assert crops.shape[-1] == 4
    scaled = np.minimum(crops.astype(np.float32), 4095) / np.float32(4095)
    windows = np.moveaxis(np.lib.stride_tricks.sliding_window_view(
        scaled, live_model.SEQ_LEN, axis=0), -1, 1)
    weights = live_model.write_model_dir(str(tmp_path / "model"),
                                         live_model.build_spread_model(
                                             np.ascontiguousarray(windows)))
    run_config_path = tmp_path / "model" / manifest_lib.RUN_CONFIG_NAME
    run_config = json.loads(run_config_path.read_text())
    run_config.update(frames="hand", hand_crop=__import__("dataclasses").asdict(hand_config))
    run_config_path.write_text(json.dumps(run_config))

    out = str(tmp_path / "online")
    with pytest.raises(SystemExit) as stop:
        run_main(detect.main, ["CausalMobileNet", weights, folder, "--mode", "online",
                               "--out", out, "--no-progress"], prog="detect.py")
    assert stop.value.code == 0
    with open(os.path.join(out, f"{plan.name}.frames.csv"), "rb") as handle:
        online_csv = handle.read()
    assert b"crop_x,crop_y,crop_side,crop_depth_mm" in online_csv.splitlines()[0]

    live = LiveDetector.open(weights)
    for frame in depth:
        live.push(frame[:, :, 0])
    result = live.close()
    assert outputs.frames_csv(result.detection, live_model.CLASSES) == online_csv
    assert result.summary["frames_without_hand"] == tracker.frames_without_hand > 0


@pytest.mark.slow
def test_score_counts_the_test_frames_without_a_hand(real_source, tmp_path):
    """score.py's summary: of the frames it reads (each Test sequence from its first
    frame to its last window's end), those where the tracker found no hand."""
    from coreLib import models
    from coreLib.evaluation import scoring
    from coreLib.training import trainer

    found = _run_main(real_source, str(tmp_path / "out"), "depth").manifest
    dataset_dir = str(tmp_path / "out" / "DataSet")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    weights = str(model_dir / "CausalMobileNet.weights.h5")
    models.build_model("CausalMobileNet", *found.window_shape[:2], found.channels,
                       found.num_classes).save_weights(weights)
    config = trainer.TrainConfig(dataset_dir=dataset_dir, model_name="CausalMobileNet",
                                 model_dir=str(model_dir))
    with open(model_dir / manifest_lib.RUN_CONFIG_NAME, "w") as handle:
        json.dump(trainer.run_config_of(config, found), handle)
    test_json, = glob.glob(os.path.join(dataset_dir, "mode:Test_*.json"))
    result = scoring.score(scoring.ScoreConfig("CausalMobileNet", weights, test_json,
                                               progress=False))

    last_frame = {}
    for window in scoring.load_test_windows(test_json, found):
        last_frame[window.path] = max(last_frame.get(window.path, 0), window.stop)
    read = without_hand = 0
    for path, last in last_frame.items():
        tracker = hand_crop.HandTracker()
        for index in range(last + 1):
            tracker.push(frames.read_frame(path, "depth", index))
        read, without_hand = read + last + 1, without_hand + tracker.frames_without_hand
    assert (result.metrics["frames_read"], result.metrics["frames_without_hand"]) == (
        read, without_hand)
    assert without_hand > 0
    assert (f"Hand-centred frames: {without_hand} of {read} frames read without a hand "
            f"(box held)") in scoring.summary_lines(result)
