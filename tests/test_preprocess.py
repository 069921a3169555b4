"""main.py's preprocessing on a hand-made tiny dataset: exact windows, JSON lists,
manifest, records, offline augmentation and determinism.

Expected window labels below are worked out by hand from tests/tiny_dataset.py
(L = 4, the shortest len; a window is an action when >= 2 of its frames are
labelled).
"""

import hashlib
import json
import os

import cv2
import numpy as np
import pytest

from file_trees import tree_bytes

from coreLib import storage
from coreLib.data import frames, manifest
from coreLib.preprocessing import augment, decode_pool, preprocess, records, resume_state
from tiny_dataset import make_dataset

tf = storage.tf
A, B, N = "act-a", "act-b", "no-action"

# Hand-worked labels per sequence, window starts 0, 1, ...
LABELS = {
    ("Train", "LN", A): [A, A, A, N, N, N, N, A, A, A, A],
    ("Train", "LN", B): [N, B, B, B, B, B, B, B, B],
    ("Train", "ann", A): [A] * 13,
    ("Train", "ann", B): [B] * 5 + [N] * 5,
    ("Train", "bob", A): [N, N, N, A, A, A, A, A, N, N, N, N],
    ("Train", "bob", B): [N, N, N, N, B, B, B, B],
    ("Test", "zed", A): [A, A, A, N, N, N, N],
    ("Test", "zed", B): [N, N, B, B, B, B],
}


def run(src, dest, **overrides):
    values = dict(src=str(src), dest=str(dest), batch_size=4, shard_size=5, workers=1)
    values.update(overrides)
    return preprocess.run_preprocessing(preprocess.PreprocessConfig(**values),
                                        progress=False, warn=lambda message: None)




def load_json(dataset_dir, name):
    with open(os.path.join(dataset_dir, name)) as handle:
        return json.load(handle)


def read_split_records(dataset_dir, value, split):
    """Every record of a split's shards, in shard order, parsed."""
    paths = [os.path.join(dataset_dir, shard.path) for shard in value.splits[split].shards]
    serialized = np.array([record.numpy() for record in tf.data.TFRecordDataset(paths)])
    return records.parse_window_batch(serialized, value.seq_len, value.image_dim,
                                      value.channels, value.dtype)


def direct_window(path, start, seq_len, modality, image_dim):
    """A window read straight from the PNGs with cv2 and frames.resize_frame."""
    stack = []
    for index in range(start, start + seq_len):
        image = cv2.imread(os.path.join(path, f"{modality}_{index}.png"), cv2.IMREAD_UNCHANGED)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image[..., None]
        stack.append(frames.resize_frame(image, image_dim))
    return np.stack(stack)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp("tiny") / "src"))


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory):
    """One default run (workers 1), shared by the read-only tests."""
    dest = tmp_path_factory.mktemp("reference") / "dest"
    summary = run(source, dest)
    return summary, os.path.join(str(dest), "DataSet")


def expected_entries(source, split, subjects):
    entries = []
    for (source_split, subject, action), classes in LABELS.items():
        if source_split == split and subject in subjects:
            path = os.path.join(source, source_split, subject, action)
            entries += [{"path": path, "start": start, "stop": start + 3, "class": name,
                         "rotation": 0, "flip": 0} for start, name in enumerate(classes)]
    return entries


def test_test_and_eval_lists_hold_every_window_in_order(source, reference):
    summary, dataset_dir = reference
    assert summary.manifest.seq_len == 4
    test = load_json(dataset_dir, "mode:Test_numOfSeqences:13_minSeqLen:4.json")
    assert test == expected_entries(source, "Test", {"zed"})
    evaluation = load_json(dataset_dir, "mode:Eval_numOfSeqences:20_minSeqLen:4.json")
    assert evaluation == expected_entries(source, "Train", {"LN"})
    # Window count per sequence is N - (L-1).
    assert len(test) == (10 - 3) + (9 - 3)


def test_train_list_is_balanced_trimmed_and_shuffled(source, reference, tmp_path):
    _, dataset_dir = reference
    train = load_json(dataset_dir, "mode:Train_numOfSeqences:36_minSeqLen:4.json")
    candidates = expected_entries(source, "Train", {"ann", "bob"})
    # 27 action windows; no-action cut to 27 // 3 classes = 9 of 16; 36 = 9 x 4.
    assert len(candidates) == 43
    assert len(train) == 36
    counts = {name: sum(entry["class"] == name for entry in train) for name in (A, B, N)}
    assert counts == {A: 18, B: 9, N: 9}
    keys = [(entry["path"], entry["start"]) for entry in train]
    assert len(set(keys)) == 36
    assert all(entry in candidates for entry in train)
    assert keys != sorted(keys)  # shuffled
    # Trimming to a multiple of the batch size: 36 -> 32 with batch 8.
    summary = run(source, tmp_path / "b8", batch_size=8)
    assert summary.manifest.splits["Train"].num_windows == 32
    # Another seed: same windows kept by class count, another order.
    other = run(source, tmp_path / "seed", seed=5)
    other_train = load_json(os.path.join(str(tmp_path / "seed"), "DataSet"),
                            "mode:Train_numOfSeqences:36_minSeqLen:4.json")
    assert other.manifest.splits["Train"].class_counts == counts
    assert other_train != train


def test_manifest_describes_the_outputs(source, reference):
    summary, dataset_dir = reference
    value = manifest.load_manifest(dataset_dir)
    assert value == summary.manifest
    assert value.classes == (A, B, N)
    assert (value.seq_len, value.image_dim, value.channels) == (4, 64, 3)
    assert (value.modality, value.dtype, value.offline_augment) == ("color", "uint8", False)
    assert value.source == os.path.abspath(source)
    train, evaluation, test = (value.splits[name] for name in ("Train", "Eval", "Test"))
    assert (train.num_windows, evaluation.num_windows, test.num_windows) == (36, 20, 13)
    assert (train.num_sequences, evaluation.num_sequences, test.num_sequences) == (4, 2, 2)
    assert (train.subjects, evaluation.subjects, test.subjects) == (
        ("ann", "bob"), ("LN",), ("zed",))
    assert evaluation.class_counts == {A: 7, B: 8, N: 5}
    assert test.class_counts == {A: 3, B: 4, N: 6}
    assert test.shards == ()
    assert [shard.num_records for shard in train.shards] == [5] * 7 + [1]
    assert [shard.path for shard in evaluation.shards] == [
        f"TFRECORD/Eval/Eval_{k}.tfrecord" for k in range(4)]
    for shard in train.shards + evaluation.shards:
        with open(os.path.join(dataset_dir, shard.path), "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == shard.sha256
    # Nothing else in DataSet: no state file, no temporaries, no cache.
    names = set(tree_bytes(dataset_dir))
    assert names == ({"dataset.json", train.json_name, evaluation.json_name, test.json_name}
                     | {shard.path for shard in train.shards + evaluation.shards})
    assert sorted(os.listdir(os.path.dirname(dataset_dir))) == ["DataSet"]


def test_records_hold_the_resized_frames_in_list_order(source, reference):
    summary, dataset_dir = reference
    value = summary.manifest
    for split in ("Train", "Eval"):
        entries = load_json(dataset_dir, value.splits[split].json_name)
        parsed = read_split_records(dataset_dir, value, split)
        assert len(entries) == len(parsed[records.LABEL_KEY])
        for index, entry in enumerate(entries):
            expected = direct_window(entry["path"], entry["start"], 4, "color", 64)
            np.testing.assert_array_equal(parsed[records.PIXELS_KEY][index].numpy(), expected)
            assert parsed[records.LABEL_KEY][index] == value.classes.index(entry["class"])
            assert parsed[records.START_KEY][index] == entry["start"]
            subject, action = entry["path"].split(os.sep)[-2:]
            assert parsed[records.SUBJECT_KEY][index].numpy().decode() == subject
            assert parsed[records.ACTION_KEY][index].numpy().decode() == action
            assert parsed[records.ROTATION_KEY][index] == 0
            assert parsed[records.FLIP_KEY][index] == 0


def test_depth_records_are_uint16(source, tmp_path):
    summary = run(source, tmp_path / "depth", modality="depth", image_dim=8, seq_len=5,
                  eval_subjects=())
    value = summary.manifest
    assert (value.dtype, value.channels, value.seq_len) == ("uint16", 1, 5)
    dataset_dir = os.path.join(str(tmp_path / "depth"), "DataSet")
    assert value.splits["Eval"].num_windows == 0
    assert load_json(dataset_dir, value.splits["Eval"].json_name) == []
    assert value.splits["Test"].json_name == "mode:Test_numOfSeqences:11_minSeqLen:5.json"
    entries = load_json(dataset_dir, value.splits["Train"].json_name)
    parsed = read_split_records(dataset_dir, value, "Train")
    for index, entry in enumerate(entries):
        np.testing.assert_array_equal(parsed[records.PIXELS_KEY][index].numpy(),
                                      direct_window(entry["path"], entry["start"], 5,
                                                    "depth", 8))


def test_offline_augment_stores_32_transformed_copies(source, tmp_path):
    summary = run(source, tmp_path / "aug", offline_augment=True, image_dim=16,
                  batch_size=100, shard_size=512)
    value = summary.manifest
    # 43 Train windows x 32 = 1376 copies: 27*32 = 864 action, 16*32 = 512 no-action
    # cut to 864 // 3 = 288; 1152 cut to a multiple of 100.
    assert value.offline_augment
    assert value.splits["Train"].num_windows == 1100
    assert [shard.num_records for shard in value.splits["Train"].shards] == [512, 512, 76]
    assert value.splits["Eval"].num_windows == 20  # unaugmented
    dataset_dir = os.path.join(str(tmp_path / "aug"), "DataSet")
    entries = load_json(dataset_dir, value.splits["Train"].json_name)
    counts = {name: sum(entry["class"] == name for entry in entries) for name in (A, B, N)}
    assert counts[N] <= 288 and sum(counts.values()) == 1100
    assert len({(e["path"], e["start"], e["rotation"], e["flip"]) for e in entries}) == 1100
    parsed = read_split_records(dataset_dir, value, "Train")
    variants = augment.variants()
    originals = {}
    for index, entry in enumerate(entries):
        key = (entry["path"], entry["start"])
        if key not in originals:
            originals[key] = augment.augment_window_variants(
                direct_window(entry["path"], entry["start"], 4, "color", 16))
        variant = variants.index((entry["rotation"], entry["flip"]))
        np.testing.assert_array_equal(parsed[records.PIXELS_KEY][index].numpy(),
                                      originals[key][variant])
        assert parsed[records.ROTATION_KEY][index] == entry["rotation"]
        assert parsed[records.FLIP_KEY][index] == entry["flip"]
    assert {(e["rotation"], e["flip"]) for e in entries} == set(variants)


def test_two_workers_give_the_same_bytes(source, reference, tmp_path):
    _, dataset_dir = reference
    run(source, tmp_path / "two", workers=2)
    assert tree_bytes(os.path.join(str(tmp_path / "two"), "DataSet")) == tree_bytes(dataset_dir)


def test_rerun_sweeps_temporaries_and_rewrites_identically(source, reference, tmp_path):
    _, dataset_dir = reference
    dest = tmp_path / "again"
    run(source, dest)
    first = tree_bytes(str(dest))
    # Leftovers of a killed run: temporaries, a removed shard and manifest.
    stale = dest / "DataSet" / "TFRECORD" / "Train" / "Train_3.tfrecord.tmp-123-abcd"
    stale.write_bytes(b"partial")
    os.remove(dest / "DataSet" / "TFRECORD" / "Train" / "Train_5.tfrecord")
    os.remove(dest / "DataSet" / "dataset.json")
    summary = run(source, dest)
    assert tree_bytes(str(dest)) == first
    assert summary.shards_reused == 0  # no state file: earlier shards are not trusted
    assert tree_bytes(os.path.join(str(dest), "DataSet")) == tree_bytes(dataset_dir)


def test_state_file_lets_a_restart_reuse_shards(source, reference, tmp_path):
    dest = tmp_path / "resume"
    run(source, dest)
    final = tree_bytes(str(dest))
    # The state a run killed after writing shards leaves: its state file, the
    # shards it finished, no manifest.
    plan = preprocess.make_plan(preprocess.PreprocessConfig(
        src=str(source), dest=str(dest), batch_size=4, shard_size=5, workers=1))
    storage.write_json_atomic(str(dest / "DataSet" / resume_state.STATE_NAME),
                              {"run_key": plan.run_key()})
    os.remove(dest / "DataSet" / "dataset.json")
    for k in (2, 6, 7):
        os.remove(dest / "DataSet" / "TFRECORD" / "Train" / f"Train_{k}.tfrecord")
    summary = run(source, dest)
    assert summary.shards_reused == 12 - 3
    assert tree_bytes(str(dest)) == final


def test_window_json_matches_json_dumps(source, reference):
    summary, dataset_dir = reference
    name = summary.manifest.splits["Train"].json_name
    with open(os.path.join(dataset_dir, name)) as handle:
        text = handle.read()
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n"


def test_clip_intervals_warns_and_clips(source, tmp_path):
    import shutil
    src = tmp_path / "src"
    shutil.copytree(source, src)
    (src / "Test" / "zed" / "act-b.xml").write_text(
        "<opencv_storage><l><_><pos>4</pos><len>9</len></_></l></opencv_storage>")
    warnings = []
    summary = preprocess.run_preprocessing(
        preprocess.PreprocessConfig(src=str(src), dest=str(tmp_path / "dest"), batch_size=4,
                                    shard_size=5, workers=1, clip_intervals=True),
        progress=False, warn=warnings.append)
    # (The tiny dataset's act-a/act-b are not BII names: that warning comes first.)
    assert len(warnings) == 2 and warnings[0].startswith("action names outside BII's 16")
    assert "clipped to len 5" in warnings[1] and "act-b.xml" in warnings[1]
    assert summary.manifest.splits["Test"].class_counts == {A: 3, B: 4, N: 6}


def test_shards_written_in_this_process_equal_the_workers(source, reference, tmp_path):
    # The path a gs:// DEST or --offline-augment takes (shards written by the
    # parent through tf.io.gfile) against the workers' path of the reference run.
    _, dataset_dir = reference
    config = preprocess.PreprocessConfig(src=str(source), dest=str(tmp_path / "dest"),
                                         batch_size=4, shard_size=5, workers=1)
    plan = preprocess.make_plan(config)
    folder = decode_pool.cache_folder(config, plan.run_key())
    os.makedirs(folder)
    tasks = decode_pool.decode_tasks(plan, folder)
    decode_pool.decode_sequences(plan, tasks, progress=False)
    preprocess.write_outputs(plan, tasks, plan.run_key(), progress=False, mapper=None)
    written = tree_bytes(os.path.join(str(tmp_path / "dest"), "DataSet"))
    assert written == tree_bytes(dataset_dir)
    assert any(name.endswith(".tfrecord") for name in written)
