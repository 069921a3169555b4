"""Hand-centred frames are the same bytes wherever they are made: main.py's records,
score.py's reader and detect.py's frame stream (coreLib.data.hand_crop)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from coreLib.data import hand_crop, manifest as manifest_lib, window_lists
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


def _run_main(source: str, dest: str, modality: str) -> manifest_lib.Manifest:
    config = preprocess.PreprocessConfig(
        src=source, dest=dest, image_dim=IMAGE_DIM, modality=modality, batch_size=1,
        shard_size=64, workers=1, frames=hand_crop.HAND_FRAMES)
    return preprocess.run_preprocessing(config, progress=False).manifest


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


@pytest.mark.parametrize("modality", ["depth", "confi"])
def test_main_score_and_stream_give_the_same_pixels_and_boxes(real_source, tmp_path,
                                                              modality):
    found = _run_main(real_source, str(tmp_path / "out"), modality)
    dataset_dir = str(tmp_path / "out" / "DataSet")
    with open(os.path.join(dataset_dir, manifest_lib.MANIFEST_NAME)) as handle:
        stored = json.load(handle)
    assert stored["frames"] == "hand"
    assert stored["hand_crop"] == json.loads(json.dumps(
        __import__("dataclasses").asdict(hand_crop.HandCropConfig())))
    windows = _records(dataset_dir, found)
    assert len(windows) == sum(found.splits[s].num_records for s in ("Train", "Eval")) > 10

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
    found = _run_main(real_source, str(tmp_path / "out"), "depth")
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
