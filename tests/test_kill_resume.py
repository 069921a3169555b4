"""Killed at any moment, nothing lost: SIGKILL main.py and train.py mid-work.

main.py is killed while it decodes frames and again while it writes shards (seen
from the files it creates), then run to the end with the same arguments. After
every kill each finished-looking file must be byte-identical to the one an
uninterrupted run writes (temporaries aside), and the final DEST must be
identical to that run's.

train.py is killed mid-epoch while a step checkpoint is being written, then run
to the end: the history holds every epoch exactly once, the second run trains
exactly the steps after the last saved one, and the global step ends where an
uninterrupted run ends.
"""

import glob
import json
import os

import pytest

from file_trees import tree_bytes
from tiny_dataset import write_tiny_source
from train_progress import logged_steps, saved_steps, tf

# Minutes of training and killed processes: outside `make test-fast`.
pytestmark = pytest.mark.slow

MAIN_OPTIONS = ["--image-dim", 16, "--batch-size", 2, "--shard-size", 4, "--workers", 1]
TEMP_MARKER = ".tmp-"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    # 96 frames of 64x48 per sequence: long enough a run to be caught mid-way.
    return write_tiny_source(str(tmp_path_factory.mktemp("kill-src") / "SRC"), frames=96,
                             size=(48, 64))


def files_matching(pattern):
    return [path for path in glob.glob(pattern, recursive=True)]


def check_nothing_half_written(dest, complete):
    """Every non-temporary output file equals the uninterrupted run's file."""
    for relative, data in tree_bytes(dest).items():
        name = os.path.basename(relative)
        if TEMP_MARKER in name or name.startswith(".preprocess"):
            continue  # never taken for finished: temporaries, cache and run state
        if relative.startswith(".preprocess-cache-"):
            continue
        assert relative in complete, f"{relative} exists only in a killed run"
        assert data == complete[relative], f"{relative} differs from the complete run's"


def test_main_killed_while_decoding_and_while_writing_shards(script_runner, source,
                                                           tmp_path):
    reference = str(tmp_path / "reference")
    completed = script_runner.run("main.py", [source, reference, *MAIN_OPTIONS])
    assert completed.returncode == 0, completed.stderr[-2000:]
    complete = tree_bytes(reference)
    shards = [name for name in complete if name.endswith(".tfrecord")]
    assert len(shards) >= 6

    dest = str(tmp_path / "killed")
    args = [source, dest, *MAIN_OPTIONS]
    kill_points = {
        # A sequence decoded into the cache, nothing of DataSet/ written yet.
        "decoding": lambda: files_matching(os.path.join(dest, ".preprocess-cache-*",
                                                        "sequence_*")),
        # Shards being written: some finished, not all.
        "shard write": lambda: len(files_matching(
            os.path.join(dest, "DataSet", "TFRECORD", "*", "*.tfrecord*"))) >= 3,
    }
    for point, condition in kill_points.items():
        child = script_runner.spawn("main.py", args)
        assert script_runner.kill_when(child, condition), f"main.py finished before {point}"
        assert not os.path.exists(os.path.join(dest, "DataSet", "dataset.json")), point
        check_nothing_half_written(dest, complete)

    completed = script_runner.run("main.py", args)
    assert completed.returncode == 0, completed.stderr[-2000:]
    final = tree_bytes(dest)
    assert sorted(final) == sorted(complete)
    for relative, data in complete.items():
        assert final[relative] == data, relative
    manifest = json.loads(final[os.path.join("DataSet", "dataset.json")])
    assert sum(split["num_windows"] for split in manifest["splits"].values()) > 0


@pytest.fixture(scope="module")
def small_source(tmp_path_factory):
    return write_tiny_source(str(tmp_path_factory.mktemp("kill-small-src") / "SRC"))


def test_train_killed_mid_epoch_during_checkpoint_save(script_runner, small_source,
                                                      tmp_path):
    dataset_root = str(tmp_path / "out")
    completed = script_runner.run("main.py", [small_source, dataset_root, *MAIN_OPTIONS])
    assert completed.returncode == 0, completed.stderr[-2000:]
    dataset = os.path.join(dataset_root, "DataSet")
    manifest = json.load(open(os.path.join(dataset, "dataset.json")))
    batch_size, epochs = 2, 3
    steps_per_epoch = manifest["splits"]["Train"]["num_windows"] // batch_size
    assert steps_per_epoch >= 6
    model_dir = str(tmp_path / "model")
    args = [dataset, "DUMMY", model_dir, "--epochs", epochs, "--batch-size", batch_size,
            "--steps-per-loop", 1, "--checkpoint-every", 2, "--quiet"]
    checkpoints = os.path.join(model_dir, "checkpoints")

    # Killed in epoch 2 while a step checkpoint is being written (its temporary
    # folder exists), with an earlier one of this epoch already recorded.
    child = script_runner.spawn("train.py", args)
    assert script_runner.kill_when(child, lambda: bool(
        glob.glob(os.path.join(checkpoints, "*_temp*"))
        and max(saved_steps(model_dir), default=0) > steps_per_epoch)), \
        "train.py finished before the kill point"
    resume_step = max(saved_steps(model_dir))
    assert steps_per_epoch < resume_step < 2 * steps_per_epoch
    history = json.load(open(os.path.join(model_dir, "history.json")))
    assert [entry["epoch"] for entry in history] == [1]  # finished epochs only

    child = script_runner.spawn("train.py", args)
    completed = script_runner.wait(child)
    assert completed.returncode == 0, completed.stderr[-2000:]
    history = json.load(open(os.path.join(model_dir, "history.json")))
    assert [entry["epoch"] for entry in history] == list(range(1, epochs + 1))
    assert max(saved_steps(model_dir)) == epochs * steps_per_epoch
    # The resumed run trained exactly the steps after the last saved one.
    assert logged_steps(model_dir, child.pid) == list(
        range(resume_step + 1, epochs * steps_per_epoch + 1))
    # The killed save's temporary folder may remain, but nothing refers to it.
    state = tf.train.get_checkpoint_state(checkpoints)
    assert all("_temp" not in path for path in state.all_model_checkpoint_paths)
    for name in ("DUMMY.weights.h5", "DUMMY_final.weights.h5", "DUMMY_history.png"):
        assert os.path.getsize(os.path.join(model_dir, name)) > 0
