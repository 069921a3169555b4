"""debug.py: CHECK on good and damaged DataSet folders, and the model smoke run."""

import os
import subprocess
import sys

import numpy as np
import pytest

import debug
import synthetic_dataset
from coreLib import storage
from coreLib.preprocessing import checks, records
from coreLib.data import manifest as manifest_lib
from coreLib.errors import ActrecogError

tf = storage.tf


def _rewrite_shard(dataset_dir, manifest, split, shard_index, replace):
    """Rewrites one shard with ``replace(index, record) -> record`` applied and
    updates the manifest's sha256, so only the record checks can catch it."""
    shard = manifest.splits[split].shards[shard_index]
    path = os.path.join(dataset_dir, shard.path)
    originals = [record.numpy() for record in tf.data.TFRecordDataset(path)]
    with tf.io.TFRecordWriter(path) as writer:
        for index, record in enumerate(originals):
            writer.write(replace(index, record))
    value = manifest.to_json()
    value["splits"][split]["shards"][shard_index]["sha256"] = storage.sha256_of(path)
    manifest_lib.write_manifest(dataset_dir, manifest_lib.Manifest.from_json(value))
    return path


def test_check_counts_every_record_and_writes_montages(tmp_path, capsys):
    folder = str(tmp_path / "DataSet")
    synthetic_dataset.write_dataset(folder, train_shards=(7, 5), eval_shards=(4,))
    out_dir = str(tmp_path / "out")
    with pytest.raises(SystemExit) as exit_info:
        from coreLib.cli import run_main
        run_main(debug.main, [folder, "CHECK", "--out", out_dir], prog="debug.py")
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    # Labels cycle 0, 1, 2 over the split: 12 Train records -> 4 of each class.
    assert ("Train: 12 records in 2 shards, window (2, 8, 8, 1) uint8; per class: "
            "asl-blue 4, ui-click 4, no-action 4") in printed
    assert "Eval: 4 records in 1 shards" in printed and "no-action 1" in printed
    for split in ("Train", "Eval"):
        with open(os.path.join(out_dir, f"check_{split}.png"), "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    reports = checks.check_dataset(folder)
    assert reports["Train"].class_counts == {"asl-blue": 4, "ui-click": 4, "no-action": 4}
    # The montage samples are the first records, exactly as stored.
    first_window, first_label = reports["Train"].samples[0]
    stored = records.parse_window_batch(
        np.array([records.first_record(os.path.join(folder, "TFRECORD/Train/Train_0.tfrecord"))],
                 dtype=object), 2, 8, 1, "uint8")
    np.testing.assert_array_equal(first_window, stored[records.PIXELS_KEY].numpy()[0])
    assert first_label == 0


def _window(shape, dtype=np.uint8):
    return np.zeros(shape, dtype)


@pytest.mark.parametrize("bad_index, make_bad, message", [
    (5, lambda: records.serialize_window(_window((2, 9, 9, 1)), 0, "LN", "a", 0),
     "record 5: window shape (2, 9, 9, 1), the manifest says (2, 8, 8, 1)"),
    (3, lambda: records.serialize_window(_window((2, 8, 8, 1)), 7, "LN", "a", 0),
     "record 3: label [7] outside 0..2"),
    (0, lambda: records.serialize_window(_window((2, 8, 8, 1), np.uint16), 1, "LN", "a", 0),
     "record 0: 256 pixel bytes, uint8 windows of shape (2, 8, 8, 1) need 128"),
    (6, lambda: b"not a record at all",
     "record 6: "),
])
def test_check_names_the_shard_and_record_of_a_bad_record(tmp_path, bad_index, make_bad,
                                                          message):
    folder = str(tmp_path / "DataSet")
    manifest = synthetic_dataset.write_dataset(folder, train_shards=(4, 8), eval_shards=(4,))
    path = _rewrite_shard(folder, manifest, "Train", 1,
                          lambda index, record: make_bad() if index == bad_index else record)
    with pytest.raises(ActrecogError) as error:
        checks.check_dataset(folder)
    assert str(error.value).startswith(f"{path}: {message}")


def test_check_catches_truncated_and_changed_shards(tmp_path):
    folder = str(tmp_path / "DataSet")
    manifest = synthetic_dataset.write_dataset(folder, train_shards=(4,), eval_shards=(4,))
    path = os.path.join(folder, manifest.splits["Eval"].shards[0].path)
    data = open(path, "rb").read()
    with open(path, "wb") as handle:
        handle.write(data[:-10])
    with pytest.raises(ActrecogError, match="Eval_0.tfrecord: record 3: corrupt or truncated"):
        checks.check_dataset(folder)
    with open(path, "wb") as handle:
        handle.write(data + data[:len(data) // 4])   # one whole extra record
    with pytest.raises(ActrecogError, match="Eval_0.tfrecord: holds 5 records, the manifest "
                                            "says 4"):
        checks.check_dataset(folder)


def test_check_bad_record_exits_2_with_one_line(repo_root, tmp_path):
    folder = str(tmp_path / "DataSet")
    manifest = synthetic_dataset.write_dataset(folder, train_shards=(4,), eval_shards=(4,))
    path = _rewrite_shard(folder, manifest, "Eval", 0, lambda index, record: (
        records.serialize_window(_window((2, 8, 8, 3)), 0, "LN", "a", 0)
        if index == 2 else record))
    completed = subprocess.run([sys.executable, os.path.join(repo_root, "debug.py"), folder,
                                "CHECK"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f"debug.py: error: {path}: record 2: window shape (2, 8, 8, 3), the manifest says "
        f"(2, 8, 8, 1)"]
    assert not os.path.exists(os.path.join(folder, "check_Train.png"))


@pytest.mark.slow
def test_model_smoke_run_prints_losses(repo_root, tmp_path):
    folder = str(tmp_path / "DataSet")
    synthetic_dataset.write_dataset(folder, train_shards=(8,), eval_shards=(4,))
    model_dir = str(tmp_path / "model")
    completed = subprocess.run([sys.executable, os.path.join(repo_root, "debug.py"), folder,
                                "DUMMY", "--steps", "3", "--model-dir", model_dir],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("epoch 1/2: train loss ")
    assert lines[1].startswith("epoch 2/2: train loss ")
    assert lines[2].startswith("DUMMY smoke run: train loss ")
    # 3 steps of batch 2 per epoch, 2 epochs.
    history = storage.read_json(os.path.join(model_dir, "history.json"))
    assert [entry["epoch"] for entry in history] == [1, 2]


def test_unknown_exec_flag_is_refused(capsys):
    from coreLib.cli import run_main
    with pytest.raises(SystemExit) as exit_info:
        run_main(debug.main, ["somewhere", "LSTM"], prog="debug.py")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "debug.py: error: EXEC_FLAG 'LSTM' is neither CHECK nor a model name "
        "(ConvNet3D, LRCN, DUMMY, CausalMobileNet)\n")
