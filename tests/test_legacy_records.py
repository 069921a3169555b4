"""1.0.4 DataSet folders (TFRECORD/Train, TFRECORD/Eval, no dataset.json) through
train.py, debug.py CHECK and score.py.

The tests write the 2019 records themselves: a ``tf.train.Example`` with ``feats``
(float32 list of L*64*64*3 values in [0, 1]) and ``label`` (int64), 64x64x3 frames
as 1.0.4 stored them, L = 2 and a few records per shard to stay small.
"""

import json
import os
import shutil

import cv2
import numpy as np
import pytest

import channel_dummy

import debug
import score
import train
from conftest import run_tool
from coreLib import models, storage
from coreLib.data import manifest as manifest_lib
from coreLib.preprocessing import legacy_records
from coreLib.cli import run_main
from coreLib.errors import ActrecogError

tf = storage.tf

SEQ_LEN = 2
DIM = 64
LEGACY = legacy_records.LEGACY_CLASSES
# Train shards of 6 and 5 records, Eval one of 4; labels cycle over these indices.
TRAIN_SHARDS = (6, 5)
EVAL_SHARDS = (4,)
LABEL_CYCLE = (2, 13, 16)   # asl-blue, ui-click, no-action in the 1.0.4 order


def legacy_example(feats: np.ndarray, label: int) -> bytes:
    """One record as 1.0.4's main.py wrote it (a plain, not deterministic, dump)."""
    return tf.train.Example(features=tf.train.Features(feature={
        "feats": tf.train.Feature(float_list=tf.train.FloatList(
            value=feats.astype(np.float32).ravel())),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    })).SerializeToString()


def write_legacy_shard(path: str, labels, seq_len: int = SEQ_LEN, seed: int = 0,
                       num_values=None) -> None:
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for label in labels:
            feats = rng.random(num_values or seq_len * DIM * DIM * 3, dtype=np.float32)
            writer.write(legacy_example(feats, label))


def write_legacy_folder(root: str, train_shards=TRAIN_SHARDS, eval_shards=EVAL_SHARDS,
                        labels=LABEL_CYCLE) -> str:
    """``root/DataSet/TFRECORD/{Train,Eval}/Train_<k>.tfrecord``; returns DataSet.

    Record i of a split (counted across its shards) has label ``labels[i % 3]``.
    Eval's files keep their Train_<k> names, as the 2019 files moved by hand did.
    """
    dataset_dir = os.path.join(root, "DataSet")
    shard_number = 0
    for split, sizes in (("Train", train_shards), ("Eval", eval_shards)):
        index = 0
        for size in sizes:
            path = os.path.join(dataset_dir, "TFRECORD", split,
                                f"Train_{shard_number}.tfrecord")
            write_legacy_shard(path, [labels[(index + i) % len(labels)]
                                      for i in range(size)], seed=shard_number)
            index += size
            shard_number += 1
    return dataset_dir


def run_script(module, argv, prog, capsys):
    """A script's main through run_main, as the script runs it: (code, out, err)."""
    assert prog == f"{module.__name__}.py", prog
    code = run_tool(module.__name__, argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(result, prog, *fragments):
    code, _, err = result
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def legacy_dir(tmp_path_factory):
    return write_legacy_folder(str(tmp_path_factory.mktemp("bucket")))


@pytest.fixture(scope="module")
def trained(legacy_dir, tmp_path_factory):
    """train.py DATASET_DIR DUMMY MODEL_DIR on the 1.0.4 folder: (model_dir, stdout)."""
    model_dir = str(tmp_path_factory.mktemp("model"))
    with pytest.raises(SystemExit) as stop:
        run_main(train.main, [legacy_dir, "DUMMY", model_dir, "--epochs", "1",
                              "--batch-size", "4", "--steps-per-epoch", "2",
                              "--steps-per-loop", "1", "--quiet"], prog="train.py")
    assert stop.value.code == 0
    return model_dir


# ----------------------------------------------------------------------------- reading

def test_folder_reads_as_a_manifest_with_window_counts_and_classes(legacy_dir):
    notes = []
    manifest = legacy_records.load_manifest_or_legacy(legacy_dir, note=notes.append)
    assert manifest.window_shape == (2, 64, 64, 3)
    assert manifest.dtype == "float32" and manifest.modality == "color"
    assert manifest.classes == LEGACY and manifest.num_classes == 17
    assert manifest.classes[:3] == ("ui-screenTap", "asl-you", "asl-blue")
    assert manifest.offline_augment and legacy_records.is_legacy_manifest(manifest)
    assert [(shard.path, shard.num_records) for shard in manifest.splits["Train"].shards] == [
        ("TFRECORD/Train/Train_0.tfrecord", 6), ("TFRECORD/Train/Train_1.tfrecord", 5)]
    assert [(shard.path, shard.num_records) for shard in manifest.splits["Eval"].shards] == [
        ("TFRECORD/Eval/Train_2.tfrecord", 4)]
    assert notes == [f"{legacy_dir}: no dataset.json, read as 1.0.4 records: window "
                     f"(2, 64, 64, 3) float32, Train 11 records in 2 shards, Eval 4 records "
                     f"in 1 shards; 17 classes in the 1.0.4 order"]
    # The TFRECORD folder itself (what 1.0.4's debug.py was given) reads the same.
    inner = legacy_records.load_legacy_manifest(os.path.join(legacy_dir, "TFRECORD"))
    assert inner.splits["Eval"].shards[0].path == "Eval/Train_2.tfrecord"
    assert inner.splits["Train"].num_records == 11


def test_seq_len_comes_from_the_feats_length(tmp_path):
    path = str(tmp_path / "DataSet" / "TFRECORD" / "Train" / "Train_0.tfrecord")
    write_legacy_shard(path, [0, 16, 3], seq_len=6)
    manifest = legacy_records.load_legacy_manifest(str(tmp_path / "DataSet"))
    assert manifest.window_shape == (6, 64, 64, 3)
    assert manifest.splits["Train"].num_records == 3 and "Eval" not in manifest.splits


def test_record_count_walks_the_framing_when_sizes_differ(tmp_path):
    path = str(tmp_path / "mixed.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for size in (10, 3, 700, 0, 41):
            writer.write(b"x" * size)
    assert legacy_records.count_records(path, 10) == 5
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:-20])          # ends inside the last record
    with pytest.raises(ActrecogError,
                       match=r"mixed.tfrecord: record 4: truncated TFRecord data"):
        legacy_records.count_records(path, 10)


# ----------------------------------------------------------------------------- train.py

def test_train_py_runs_on_the_1_0_4_folder_and_records_the_class_order(legacy_dir, trained,
                                                                        capsys):
    config = json.load(open(os.path.join(trained, "run_config.json")))
    # Where the run's data lies (export.py finds its calibration and Test windows there).
    assert os.path.samefile(config.pop("dataset_dir"), legacy_dir)
    assert config == {"model_name": "DUMMY", "window_shape": [2, 64, 64, 3],
                      "num_classes": 17, "classes": list(LEGACY), "modality": "color",
                      "dtype": "float32"}
    history = json.load(open(os.path.join(trained, "history.json")))
    assert len(history) == 1 and history[0]["eval_loss"] is not None   # Eval was read
    for name in ("DUMMY.weights.h5", "DUMMY_final.weights.h5", "DUMMY_history.png"):
        assert os.path.isfile(os.path.join(trained, name))


def test_train_without_eval_folder_and_with_own_classes(tmp_path, capsys):
    dataset_dir = write_legacy_folder(str(tmp_path), eval_shards=())
    assert not os.path.exists(os.path.join(dataset_dir, "TFRECORD", "Eval"))
    classes = [f"action-{number}" for number in range(16)] + ["no-action"]
    model_dir = str(tmp_path / "model")
    code, out, err = run_script(train, [dataset_dir, "DUMMY", model_dir, "--epochs", 1,
                                        "--batch-size", 4, "--steps-per-loop", 1,
                                        "--legacy-classes", ",".join(classes)],
                                "train.py", capsys)
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"{dataset_dir}: no dataset.json, read as 1.0.4 records: window (2, 64, 64, 3) "
        f"float32, Train 11 records in 2 shards, no Eval folder; 17 classes in "
        f"--legacy-classes order")
    assert json.load(open(os.path.join(model_dir, "run_config.json")))["classes"] == classes
    history = json.load(open(os.path.join(model_dir, "history.json")))
    assert history[0]["eval_loss"] is None      # 11 // 4 = 2 steps, no Eval pass


# ----------------------------------------------------------------------------- CHECK

def test_check_counts_per_class_and_draws_montages(legacy_dir, tmp_path, capsys):
    out_dir = str(tmp_path / "out")
    code, out, err = run_script(debug, [legacy_dir, "CHECK", "--out", out_dir], "debug.py",
                                capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{legacy_dir}: no dataset.json, read as 1.0.4 records")
    zeros = {name: 0 for name in LEGACY}
    # Record i has label LABEL_CYCLE[i % 3]: 11 Train -> 4, 4, 3; 4 Eval -> 2, 1, 1.
    train_counts = dict(zeros, **{"asl-blue": 4, "ui-click": 4, "no-action": 3})
    eval_counts = dict(zeros, **{"asl-blue": 2, "ui-click": 1, "no-action": 1})
    for split, total, shards, counts in (("Train", 11, 2, train_counts),
                                         ("Eval", 4, 1, eval_counts)):
        per_class = ", ".join(f"{name} {count}" for name, count in counts.items())
        assert (f"{split}: {total} records in {shards} shards, window (2, 64, 64, 3) "
                f"float32; per class: {per_class}") in lines
        with open(os.path.join(out_dir, f"check_{split}.png"), "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert lines[-1] == "CHECK passed: 15 records"


def test_check_names_the_record_of_a_bad_label(tmp_path, capsys):
    dataset_dir = write_legacy_folder(str(tmp_path))
    write_legacy_shard(os.path.join(dataset_dir, "TFRECORD", "Train", "Train_1.tfrecord"),
                       [0, 1, 2, 17, 4])
    one_line_error(run_script(debug, [dataset_dir, "CHECK", "--out", str(tmp_path)],
                              "debug.py", capsys),
                   "debug.py", "Train_1.tfrecord: record 3: label [17] outside 0..16 "
                               "(--legacy-classes)")
    # Training reads batches, not files: the one line names the folder and the option.
    result = run_script(train, [dataset_dir, "DUMMY", str(tmp_path / "m"), "--epochs", 1,
                                "--batch-size", 4, "--no-eval", "--steps-per-epoch", 3,
                                "--quiet"], "train.py", capsys)
    one_line_error(result, "train.py", dataset_dir, "([1.0.4 record label outside the 17 "
                   "classes 0..16 (--legacy-classes); labels:]", "CHECK to find it")
    assert "function_node" not in result[2]     # no tf.data frame names


# ----------------------------------------------------------------------------- score.py

def write_test_json(folder: str, frames_root: str, names) -> str:
    """Three colour sequences (red, green, blue dominant), 3 frames each, and a Test
    JSON of their 2-frame windows labelled ``names[colour]``; returns its path."""
    os.makedirs(folder, exist_ok=True)
    entries = []
    for channel in range(3):
        sequence = os.path.join(frames_root, f"seq{channel}")
        os.makedirs(sequence, exist_ok=True)
        for index in range(3):
            rgb = np.zeros((24, 20, 3), np.uint8)
            rgb[..., channel] = 120 + 40 * index
            cv2.imwrite(os.path.join(sequence, f"color_{index}.png"), rgb[..., ::-1])
        for stop in (1, 2):
            entries.append({"path": sequence, "start": stop - 1, "stop": stop,
                            "class": names[channel], "rotation": 0, "flip": 0})
    path = os.path.join(folder, manifest_lib.split_json_name("Test", 3, SEQ_LEN))
    with open(path, "w") as handle:
        json.dump(entries, handle)
    return path


def channel_dummy_weights(path: str) -> None:
    """DUMMY weights that output logit c for the brightest colour channel c (c < 3):
    in the 1.0.4 order ui-screenTap for red, asl-you for green, asl-blue for blue."""
    channel_dummy.channel_vote_dummy(SEQ_LEN, DIM, len(LEGACY), gain=40.0).save_weights(path)


def test_trained_weights_score_on_a_test_json_by_class_name(trained, tmp_path, capsys):
    names = ("asl-blue", "ui-click", "no-action")
    json_path = write_test_json(str(tmp_path / "DataSet"), str(tmp_path / "SRC"), names)
    code, out, err = run_script(score, ["DUMMY", os.path.join(trained, "DUMMY.weights.h5"),
                                        json_path, "--batch-size", 4], "score.py", capsys)
    assert code == 0, err
    results = os.path.join(os.path.dirname(json_path), "Results")
    video_sec = json.load(open(os.path.join(results, "video_sec_DUMMY.json")))
    metrics = json.load(open(os.path.join(results, "metrics_DUMMY.json")))
    assert [entry["truth"] for entry in video_sec] == [name for name in names
                                                       for _ in range(2)]
    assert metrics["classes"] == list(LEGACY)
    # Truth rows by the model's (1.0.4) indices: asl-blue 2, ui-click 13, no-action 16.
    matrix = np.array(metrics["confusion_matrix"])
    assert {int(row): int(count) for row, count in enumerate(matrix.sum(axis=1))
            if count} == {2: 2, 13: 2, 16: 2}
    predicted = {LEGACY.index(entry["prediction"]) for entry in video_sec}
    assert sorted(np.nonzero(matrix.sum(axis=0))[0].tolist()) == sorted(predicted)


@pytest.mark.parametrize("manifest_order", [None, "sorted"])
def test_scoring_maps_json_names_to_the_models_indices(trained, tmp_path, capsys,
                                                       manifest_order):
    """Without a dataset.json, and with one of another class order: the JSON's names
    go to the indices of the model's run_config.json, so a model that is right
    scores 100."""
    model_dir = str(tmp_path / "model")
    os.makedirs(model_dir)
    shutil.copy(os.path.join(trained, "run_config.json"), model_dir)
    channel_dummy_weights(os.path.join(model_dir, "DUMMY.weights.h5"))
    folder = str(tmp_path / "DataSet")
    json_path = write_test_json(folder, str(tmp_path / "SRC"), LEGACY[:3])
    if manifest_order:
        test = manifest_lib.SplitInfo("Test", os.path.basename(json_path), 3, 6, ("s",))
        manifest_lib.write_manifest(folder, manifest_lib.Manifest(
            tuple(sorted(LEGACY[:-1])) + ("no-action",), SEQ_LEN, DIM, 3, "color", "uint8",
            False, {"Test": test}, "src"))
    code, out, err = run_script(score, ["DUMMY", os.path.join(model_dir, "DUMMY.weights.h5"),
                                        json_path], "score.py", capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "Test data Prediction Accuracy [F1 accuracy]: 100.0"
    video_sec = json.load(open(os.path.join(folder, "Results", "video_sec_DUMMY.json")))
    assert [(entry["truth"], entry["prediction"]) for entry in video_sec] == [
        (name, name) for name in LEGACY[:3] for _ in range(2)]


# ----------------------------------------------------------------------------- bad input

def test_bad_folders_and_options_exit_2_with_one_line(legacy_dir, tmp_path, capsys):
    def train_run(dataset_dir, *options):
        return run_script(train, [dataset_dir, "DUMMY", str(tmp_path / "m"), "--quiet",
                                  *options], "train.py", capsys)

    empty = str(tmp_path / "empty")
    os.makedirs(os.path.join(empty, "TFRECORD", "Train"))
    one_line_error(train_run(empty), "train.py", empty, "no dataset.json manifest",
                   "no 1.0.4 shards in TFRECORD/Train/")
    one_line_error(run_script(debug, [empty, "CHECK"], "debug.py", capsys), "debug.py",
                   empty, "no dataset.json manifest")

    odd = str(tmp_path / "odd")
    write_legacy_shard(os.path.join(odd, "TFRECORD", "Train", "Train_0.tfrecord"), [0],
                       num_values=64 * 64 * 3 + 5)
    one_line_error(train_run(odd), "train.py", "Train_0.tfrecord: record 0 holds 12293 "
                   "feats values, not a multiple of 64*64*3 = 12288")

    other_length = str(tmp_path / "other_length")
    write_legacy_folder(other_length)
    write_legacy_shard(os.path.join(other_length, "DataSet", "TFRECORD", "Eval",
                                    "Train_2.tfrecord"), [0], seq_len=3)
    one_line_error(train_run(os.path.join(other_length, "DataSet")), "train.py",
                   "Train_2.tfrecord: record 0 holds 36864 feats values, the first "
                   "shard's records hold 24576 (L = 2)")

    first_label = str(tmp_path / "first_label")
    write_legacy_shard(os.path.join(first_label, "TFRECORD", "Train", "Train_0.tfrecord"),
                       [40, 0])
    one_line_error(train_run(first_label), "train.py",
                   "Train_0.tfrecord: record 0: label [40] outside the 17 classes 0..16")

    truncated = str(tmp_path / "truncated")
    path = os.path.join(truncated, "TFRECORD", "Train", "Train_0.tfrecord")
    write_legacy_shard(path, [0, 1, 2])
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) - 100)
    one_line_error(train_run(truncated), "train.py",
                   "Train_0.tfrecord: record 2: truncated TFRecord data")

    for name, content, message in (("no_records", b"", "shard holds no records"),
                                   ("not_a_record", b"not a TFRecord file" * 5,
                                    "record 0: truncated TFRecord data")):
        folder = str(tmp_path / name)
        os.makedirs(os.path.join(folder, "TFRECORD", "Train"))
        with open(os.path.join(folder, "TFRECORD", "Train", "Train_0.tfrecord"), "wb") as out:
            out.write(content)
        one_line_error(train_run(folder), "train.py", f"Train_0.tfrecord: {message}")

    one_line_error(train_run(legacy_dir, "--legacy-classes", "a,b,no-action"), "train.py",
                   "--legacy-classes: 3 names given; 1.0.4 records index 17 classes")
    one_line_error(train_run(legacy_dir, "--legacy-classes", ",".join(LEGACY[::-1])),
                   "train.py", "--legacy-classes: the last class must be 'no-action'")
    repeated = LEGACY[:-2] + ("asl-you", "no-action")
    one_line_error(train_run(legacy_dir, "--legacy-classes", ",".join(repeated)),
                   "train.py", "--legacy-classes: class 'asl-you' given twice")
    one_line_error(train_run(legacy_dir, "--legacy-classes", "a,,b"), "train.py",
                   "--legacy-classes: 'a,,b' has an empty name")
    one_line_error(run_script(debug, [legacy_dir, "CHECK", "--legacy-classes", "a,no-action"],
                              "debug.py", capsys), "debug.py", "--legacy-classes: 2 names")

    with_manifest = str(tmp_path / "with_manifest")
    shutil.copytree(legacy_dir, with_manifest)
    with open(os.path.join(with_manifest, "dataset.json"), "w") as handle:
        handle.write("{}")
    one_line_error(train_run(with_manifest, "--legacy-classes", ",".join(LEGACY)),
                   "train.py", "--legacy-classes:", "holds a dataset.json manifest")
    assert not os.path.exists(str(tmp_path / "m"))


def test_score_without_manifest_or_run_config_names_both(tmp_path, capsys):
    folder = str(tmp_path / "DataSet")
    json_path = write_test_json(folder, str(tmp_path / "SRC"), LEGACY[:3])
    weights = str(tmp_path / "loose" / "DUMMY.weights.h5")
    os.makedirs(os.path.dirname(weights))
    channel_dummy_weights(weights)
    one_line_error(run_script(score, ["DUMMY", weights, json_path], "score.py", capsys),
                   "score.py", f"{folder}: no dataset.json manifest",
                   f"no run_config.json beside {weights}")
    assert not os.path.exists(os.path.join(folder, "Results"))
