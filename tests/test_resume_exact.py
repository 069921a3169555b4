"""A killed and restarted train.py ends exactly where an uninterrupted run ends.

Dropout draws its masks from Keras seed generators whose state advances every
training step; ``tf.train.Checkpoint(model=...)`` does not hold that state, so the
trainer checkpoints it explicitly (``trainer.random_state_variables``). These
tests SIGKILL train.py at observed moments (between step checkpoints, while one is
written, during the Eval pass, mid-epoch 2), restart it until it finishes, and
compare with one uninterrupted run without ``--checkpoint-every``: with
``--deterministic`` every array of both weight files and every history loss must be
bit-identical. Without it, the resumed run must still continue the same steps,
learning-rate schedule and epoch order.
"""

import json
import os

import pytest

import synthetic_dataset
from coreLib.data import manifest as manifest_lib
from coreLib import models
from coreLib.training import trainer
from train_progress import checkpoint_writing, latest_step, logged_steps, saved_steps
from weight_files import h5_arrays

# Minutes of training and killed processes: outside `make test-fast`.
pytestmark = pytest.mark.slow

tf = trainer.tf

HISTORY_VALUES = ("epoch", "train_loss", "train_accuracy", "eval_loss", "eval_accuracy")


def history_values(model_dir):
    with open(os.path.join(model_dir, "history.json")) as handle:
        return [{key: entry[key] for key in HISTORY_VALUES} for entry in json.load(handle)]


def assert_same_run(expected_dir, actual_dir, model_name):
    assert history_values(actual_dir) == history_values(expected_dir)
    for name in (trainer.final_weights_name(model_name),
                 trainer.best_weights_name(model_name)):
        expected = h5_arrays(os.path.join(expected_dir, name))
        actual = h5_arrays(os.path.join(actual_dir, name))
        assert sorted(actual) == sorted(expected) and expected, name
        differing = [key for key in expected
                     if expected[key].tobytes() != actual[key].tobytes()]
        assert not differing, f"{name}: {differing}"


def train_args(dataset, model_name, model_dir, *options):
    return [dataset, model_name, model_dir, "--epochs", 2, "--batch-size", 4,
            "--steps-per-loop", 3, "--seed", 3, *options]


def run_to_end(script_runner, args):
    completed = script_runner.run("train.py", args)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed


def test_random_state_variables_are_the_dropout_and_lstm_seeds():
    lrcn = trainer.random_state_variables(models.build_model("LRCN", 2, 43, 3, 3))
    assert sorted(lrcn) == ["fc1_dropout", "fc2_dropout", "lstm1", "lstm2", "lstm3",
                            "lstm4"]
    convnet3d = trainer.random_state_variables(models.build_model("ConvNet3D", 2, 16, 3, 3))
    assert sorted(convnet3d) == ["fc1_dropout", "fc2_dropout"]
    assert trainer.random_state_variables(models.build_model("DUMMY", 2, 8, 1, 3)) == {}
    for states in (lrcn, convnet3d):
        for variables in states.values():
            assert [tuple(variable.shape) for variable in variables] == [(2,)]


@pytest.mark.slow
def test_lrcn_killed_at_four_points_ends_bit_identical(script_runner, tmp_path):
    dataset = str(tmp_path / "DataSet")
    synthetic_dataset.write_dataset(dataset, seq_len=2, image_dim=43, channels=3,
                                    train_shards=(12, 12), eval_shards=(16,))
    # 6 steps per epoch; the killed runs checkpoint every 2 steps (2, 4, end 6, 8, 10,
    # end 12) and so also run the steps in other groups than the reference's 3 + 3.
    options = ["--steps-per-epoch", 6, "--deterministic"]
    reference = str(tmp_path / "reference")
    run_to_end(script_runner, train_args(dataset, "LRCN", reference, *options, "--quiet"))

    model_dir = str(tmp_path / "killed")
    args = train_args(dataset, "LRCN", model_dir, *options, "--checkpoint-every", 2)
    best_weights = os.path.join(model_dir, trainer.best_weights_name("LRCN"))

    def in_eval_pass(child):
        # Epoch 1's steps are done (stderr is a file: its plain progress line at
        # the end of the steps) and its summary line is not printed yet. (The
        # child's output files appear only once it has started.)
        if not (os.path.exists(child.stderr_path) and os.path.exists(child.stdout_path)):
            return False
        with open(child.stderr_path, encoding="utf-8", errors="replace") as handle:
            progress = handle.read()
        with open(child.stdout_path, encoding="utf-8", errors="replace") as handle:
            summary = handle.read()
        return ("epoch 1/2: 6/6 step" in progress and "epoch 1/2:" not in summary)

    kills = [
        # (name, condition, checkpoint step the next run resumes from)
        ("between checkpoints", lambda child: latest_step(model_dir) == 2
         and not checkpoint_writing(model_dir), 2),
        ("during a checkpoint write", lambda child: checkpoint_writing(model_dir), 2),
        ("during the Eval pass", in_eval_pass, 4),
        ("mid-epoch 2", lambda child: latest_step(model_dir) == 8
         and not checkpoint_writing(model_dir), 8),
    ]
    for name, condition, resume_step in kills:
        child = script_runner.spawn("train.py", args)
        assert script_runner.kill_when(child, lambda: condition(child)), \
            f"train.py finished before the kill {name}"
        assert latest_step(model_dir) == resume_step, name
        if name == "during the Eval pass":
            # Killed after epoch 1's last step, before its best weights.
            assert not os.path.exists(best_weights)
    child = script_runner.spawn("train.py", args)
    completed = script_runner.wait(child)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert logged_steps(model_dir, child.pid) == [10, 12]
    assert_same_run(reference, model_dir, "LRCN")


@pytest.mark.slow
def test_convnet3d_killed_mid_epoch_2_ends_bit_identical(script_runner, tmp_path):
    # ConvNet3D keeps its 49 M parameters at any frame size (4096-unit Dense
    # layers): each step and each 0.6 GB checkpoint costs, so the smallest run
    # with a mid-epoch-2 checkpoint: 2 epochs of 2 steps, 1 Eval batch.
    dataset = str(tmp_path / "DataSet")
    synthetic_dataset.write_dataset(dataset, seq_len=2, image_dim=16, channels=3,
                                    train_shards=(8,), eval_shards=(4,))
    options = ["--steps-per-epoch", 2, "--deterministic", "--quiet"]
    reference = str(tmp_path / "reference")
    run_to_end(script_runner, train_args(dataset, "ConvNet3D", reference, *options))

    model_dir = str(tmp_path / "killed")
    # Checkpoints at the end of epoch 1 (step 2) and at step 3, mid-epoch 2, only;
    # the killed run's epoch 2 runs as 1 + 1 steps, the reference's as 2.
    args = train_args(dataset, "ConvNet3D", model_dir, *options, "--checkpoint-every", 3)
    child = script_runner.spawn("train.py", args)
    assert script_runner.kill_when(child, lambda: latest_step(model_dir) == 3
                     and not checkpoint_writing(model_dir)), "train.py finished first"
    assert saved_steps(model_dir) == [2, 3]
    child = script_runner.spawn("train.py", args)
    completed = script_runner.wait(child)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert logged_steps(model_dir, child.pid) == [4]
    assert_same_run(reference, model_dir, "ConvNet3D")


def optimizer_step(checkpoint_path):
    """The optimizer's step counter stored in a checkpoint (what the schedule reads)."""
    reader = tf.train.load_checkpoint(checkpoint_path)
    names = [name for name in reader.get_variable_to_shape_map()
             if name.startswith("optimizer/") and "iteration" in name]
    assert len(names) == 1, names
    return int(reader.get_tensor(names[0]))


@pytest.mark.slow
def test_without_deterministic_a_resume_keeps_steps_schedule_and_order(script_runner,
                                                                       tmp_path):
    dataset = str(tmp_path / "DataSet")
    manifest = synthetic_dataset.write_dataset(dataset)
    steps_per_epoch, epochs = manifest.splits["Train"].num_windows // 8, 3
    model_dir = str(tmp_path / "model")
    args = [dataset, "DUMMY", model_dir, "--epochs", epochs,
            "--batch-size", 8, "--steps-per-loop", 1, "--checkpoint-every", 2,
            "--lr-schedule", "cosine", "--seed", 3, "--quiet"]
    child = script_runner.spawn("train.py", args)
    assert script_runner.kill_when(child, lambda: latest_step(model_dir) > steps_per_epoch
                     and not checkpoint_writing(model_dir)), "train.py finished first"
    resume_step = latest_step(model_dir)
    assert steps_per_epoch < resume_step < 2 * steps_per_epoch
    checkpoints = os.path.join(model_dir, "checkpoints")
    # The schedule continues from the saved step: the optimizer's counter is in it.
    assert optimizer_step(tf.train.latest_checkpoint(checkpoints)) == resume_step

    child = script_runner.spawn("train.py", args)
    completed = script_runner.wait(child)
    assert completed.returncode == 0, completed.stderr[-2000:]
    total = epochs * steps_per_epoch
    # Exactly the steps after the saved one, each once, and every epoch once.
    assert logged_steps(model_dir, child.pid) == list(range(resume_step + 1, total + 1))
    assert [entry["epoch"] for entry in history_values(model_dir)] == [1, 2, 3]
    assert optimizer_step(tf.train.latest_checkpoint(checkpoints)) == total

    # The epoch order: the resumed epoch's batches are the uninterrupted epoch's,
    # from the saved step on, with or without --deterministic.
    loaded = manifest_lib.load_manifest(dataset)
    step_in_epoch = resume_step - steps_per_epoch

    def batches(deterministic, epoch, skip_steps=0):
        config = trainer.TrainConfig(dataset_dir=dataset, model_name="DUMMY",
                                      model_dir=model_dir, batch_size=8, seed=3,
                                      deterministic=deterministic)
        return [(pixels.numpy().tobytes(), labels.numpy().tobytes())
                for pixels, labels in trainer.make_train_dataset(
                    config, loaded, epoch, steps_per_epoch, skip_steps)]

    whole = batches(True, epoch=1)
    assert batches(False, epoch=1) == whole
    assert batches(False, epoch=1, skip_steps=step_in_epoch) == whole[step_in_epoch:]
    assert batches(False, epoch=0) != whole  # each epoch its own order
