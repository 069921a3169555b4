"""The training loop on the default strategy: learning, MODEL_DIR files, resume, errors.

Everything runs on tiny generated DataSet folders (tests/synthetic_dataset.py) whose
classes are separable, so a loop that learns must drive the loss down.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from weight_files import h5_arrays

import synthetic_dataset
from coreLib.data import manifest as manifest_lib
from coreLib.training import trainer
from coreLib.errors import ActrecogError

tf = trainer.tf


def _config(dataset_dir, model_dir, **overrides):
    values = dict(dataset_dir=str(dataset_dir), model_name="DUMMY", model_dir=str(model_dir),
                  epochs=8, batch_size=8, lr=1e-2, lr_schedule="constant",
                  steps_per_loop=4, seed=3, deterministic=True,
                  # The loop's tests on the plain cross-entropy (its floor is 0); the
                  # default smoothing has a test of its own.
                  label_smoothing=0.0)
    values.update(overrides)
    return trainer.TrainConfig(**values)




def _scalars(log_dir, tag):
    values = []
    for name in sorted(os.listdir(log_dir)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
            for value in event.summary.value:
                if value.tag == tag:
                    values.append((event.step, float(tf.make_ndarray(value.tensor))))
    return values


@pytest.fixture(scope="module")
def dummy_run(dataset_dir, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("dummy"))
    result = trainer.run_training(_config(dataset_dir, model_dir), progress=False)
    return model_dir, result


@pytest.mark.slow
def test_dummy_learns(dummy_run):
    _, result = dummy_run
    losses = [entry["train_loss"] for entry in result.history]
    # Epoch 1's mean is close to the untrained loss ln(3) = 1.10 (6 steps only).
    assert losses[0] > 0.9
    assert losses[-1] < 0.5 * losses[0], losses
    assert result.history[-1]["train_accuracy"] > 0.9


def test_model_dir_holds_weights_history_plot_and_logs(dummy_run, dataset_dir):
    model_dir, result = dummy_run
    history = json.loads(open(os.path.join(model_dir, "history.json")).read())
    assert history == result.history
    assert [entry["epoch"] for entry in history] == list(range(1, 9))
    assert set(history[0]) == {"epoch", "train_loss", "train_accuracy", "eval_loss",
                               "eval_accuracy", "seconds", "sequences_per_second"}
    # 48 Train records / batch 8 = 6 steps per epoch.
    assert result.global_step == 8 * 6
    with open(os.path.join(model_dir, "DUMMY_history.png"), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.loads(open(os.path.join(model_dir, "run_config.json")).read()) == {
        "model_name": "DUMMY", "window_shape": [2, 8, 8, 1], "num_classes": 3,
        "classes": list(synthetic_dataset.CLASSES), "modality": "depth", "dtype": "uint8",
        "dataset_dir": os.path.abspath(dataset_dir)}
    # The final weights file holds exactly the trained model's weights.
    final = h5_arrays(os.path.join(model_dir, "DUMMY_final.weights.h5"))
    stored = sorted(final.values(), key=lambda array: (array.shape, array.sum()))
    trained = sorted(result.model.get_weights(), key=lambda array: (array.shape, array.sum()))
    assert len(stored) == len(trained) == 4
    for left, right in zip(stored, trained):
        np.testing.assert_array_equal(left, right)
    # The best weights load into a fresh model.
    best = h5_arrays(os.path.join(model_dir, "DUMMY.weights.h5"))
    assert sorted(array.shape for array in best.values()) == sorted(
        array.shape for array in trained)
    # TensorBoard: one train and one eval loss per epoch, equal to the history.
    train_losses = _scalars(os.path.join(model_dir, "logs", "train"), "loss")
    eval_losses = _scalars(os.path.join(model_dir, "logs", "eval"), "loss")
    assert [step for step, _ in train_losses] == list(range(1, 9))
    np.testing.assert_allclose([value for _, value in eval_losses],
                               [entry["eval_loss"] for entry in history], rtol=1e-6)
    assert len(_scalars(os.path.join(model_dir, "logs", "train"), "step_loss")) == 8 * 2


@pytest.mark.slow
def test_resume_continues_with_the_same_history_and_best(dummy_run, dataset_dir,
                                                         tmp_path):
    model_dir, first = dummy_run
    best_before = open(os.path.join(model_dir, "DUMMY.weights.h5"), "rb").read()
    again = trainer.run_training(_config(dataset_dir, model_dir, epochs=10), progress=False)
    assert again.resumed_from_step == 48
    assert again.global_step == 60
    assert again.history[:8] == first.history
    assert [entry["epoch"] for entry in again.history] == list(range(1, 11))
    best_loss = min(entry["eval_loss"] for entry in first.history)
    if min(entry["eval_loss"] for entry in again.history[8:]) >= best_loss:
        # No better epoch: the best weights file is left as it was.
        assert open(os.path.join(model_dir, "DUMMY.weights.h5"), "rb").read() == best_before
    # A run that already reached its epochs does nothing more.
    done = trainer.run_training(_config(dataset_dir, model_dir, epochs=10), progress=False)
    assert done.global_step == 60 and done.history == again.history


def test_model_dir_of_another_model_or_shape_is_refused(dummy_run, tmp_path):
    model_dir, _ = dummy_run
    with pytest.raises(ActrecogError, match="holds checkpoints of model DUMMY.*not LRCN"):
        trainer.run_training(_config(_dataset_of_shape(tmp_path, 8), model_dir,
                                      model_name="LRCN"), progress=False)
    with pytest.raises(ActrecogError, match=r"window \[2, 8, 8, 1\].*window \[2, 12, 12, 1\]"):
        trainer.run_training(_config(_dataset_of_shape(tmp_path, 12), model_dir),
                              progress=False)


def _dataset_of_shape(tmp_path, image_dim):
    folder = str(tmp_path / f"DataSet{image_dim}")
    if not os.path.exists(folder):
        synthetic_dataset.write_dataset(folder, image_dim=image_dim, train_shards=(8,),
                                        eval_shards=(8,))
    return folder


def test_batch_size_checks():
    trainer.check_batch_size(8, 2, {"Train": 8, "Eval": 16})
    with pytest.raises(ActrecogError, match="--batch-size 9 is not divisible by the 2"):
        trainer.check_batch_size(9, 2, {"Train": 48})
    with pytest.raises(ActrecogError, match="larger than the Eval split \\(16 records\\)"):
        trainer.check_batch_size(32, 1, {"Train": 48, "Eval": 16})


@pytest.mark.slow
def test_lrcn_learns(tmp_path):
    folder = str(tmp_path / "DataSet")
    synthetic_dataset.write_dataset(folder, image_dim=43, train_shards=(24,),
                                    eval_shards=(8,))
    history = trainer.train(_config(folder, tmp_path / "lrcn", model_name="LRCN",
                                     epochs=5, steps_per_epoch=6, lr=3e-3, eval=False,
                                     # the settings the threshold was measured with
                                     augment="all", bn_momentum=0.99,
                                     # learning, not bits: no XLA compile
                                     deterministic=False),
                             progress=False)
    losses = [entry["train_loss"] for entry in history]
    assert losses[-1] < 0.5 * losses[0], losses


def _run_train(repo_root, *args):
    return subprocess.run([sys.executable, os.path.join(repo_root, "train.py"), *args],
                          capture_output=True, text=True, timeout=120)


def _one_line_error(completed, *fragments):
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), completed.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.slow
def test_bad_inputs_exit_2_with_one_line(repo_root, tmp_path, capsys):
    import train
    from coreLib.cli import run_main

    folder = str(tmp_path / "DataSet")
    manifest = synthetic_dataset.write_dataset(folder, train_shards=(8, 8), eval_shards=(8,))
    model_dir = str(tmp_path / "model")
    shard = os.path.join(folder, manifest.splits["Train"].shards[1].path)
    with open(shard, "ab") as handle:
        handle.write(b"x")
    # One real process: no TensorFlow chatter, no traceback, one line.
    _one_line_error(_run_train(repo_root, folder, "DUMMY", model_dir),
                    shard, "sha256", "differs")

    def in_process(*args):
        with pytest.raises(SystemExit) as exit_info:
            run_main(train.main, list(args), prog="train.py")
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, exit_info.value.code, captured.out,
                                           captured.err)

    os.remove(shard)
    _one_line_error(in_process(folder, "DUMMY", model_dir), shard, "missing")
    _one_line_error(in_process(str(tmp_path), "DUMMY", model_dir),
                    str(tmp_path), "no dataset.json manifest")
    _one_line_error(in_process(folder, "VGG", model_dir),
                    "unknown model name 'VGG'; valid names: ConvNet3D, LRCN, DUMMY")
    _one_line_error(in_process(folder, "DUMMY", model_dir, "--strategy", "gpu"),
                    "unknown strategy 'gpu'")
    assert not os.path.exists(model_dir)


def test_records_of_another_shape_are_refused(tmp_path):
    folder = str(tmp_path / "DataSet")
    manifest = synthetic_dataset.write_dataset(folder, train_shards=(8,), eval_shards=(8,))
    # A manifest that claims another frame size than the records hold.
    value = manifest.to_json()
    value["image_dim"] = 10
    with open(os.path.join(folder, manifest_lib.MANIFEST_NAME), "w") as handle:
        json.dump(value, handle)
    with pytest.raises(ActrecogError, match=r"Train_0.tfrecord: records hold windows of "
                                            r"shape \(2, 8, 8, 1\), expected \(2, 10, 10, 1\)"):
        trainer.train(_config(folder, tmp_path / "model"), progress=False)


def test_no_augment_feeds_the_stored_windows(dataset_dir, tmp_path):
    from coreLib.training import pipeline

    manifest = manifest_lib.load_manifest(dataset_dir)
    steps = manifest.splits["Train"].num_windows // 8

    def batches(**overrides):
        config = _config(dataset_dir, tmp_path, **overrides)
        dataset = trainer.make_train_dataset(config, manifest, epoch=0,
                                              steps_per_epoch=steps)
        return [pixels.numpy() for pixels, _ in dataset]

    plain, augmented = batches(augment=False), batches()
    assert len(plain) == len(augmented) == steps
    stored = pipeline.make_dataset(dataset_dir, "Train", manifest, pipeline.PipelineConfig(
        batch_size=1, training=False, augment=False, verify_sha256=False))
    stored_windows = {pixels.numpy().tobytes() for pixels, _ in stored}
    fed = [window.tobytes() for batch in plain for window in batch]
    # Without augmentation every window fed is a stored window, scaled; none twice.
    assert len(set(fed)) == len(fed) == steps * 8
    assert set(fed) <= stored_windows
    # With it (the default), windows are rotated/flipped copies.
    assert any(window.tobytes() not in stored_windows
               for batch in augmented for window in batch)


def test_bn_momentum_reaches_every_batch_norm_layer(dataset_dir, tmp_path):
    import keras
    import train
    from coreLib import models

    from coreLib.preprocessing import augment
    from coreLib.training import optimizer

    # train.py spells the recipe's names and defaults without importing TensorFlow.
    args = train.build_parser().parse_args(["d", "LRCN", "m"])
    assert (args.bn_momentum, args.lr, args.augment, args.lr_schedule) == (
        None, None, trainer.DEFAULT_AUGMENT, trainer.DEFAULT_LR_SCHEDULE)
    assert train.LR_SCHEDULES == optimizer.LR_SCHEDULES
    assert train.AUGMENT_MODES == tuple(augment.AUGMENT_MODES)
    assert (train.DEFAULT_AUGMENT, train.DEFAULT_LR_SCHEDULE, train.DEFAULT_ZOOM_JITTER,
            train.DEFAULT_COLOR_JITTER) == (
        trainer.DEFAULT_AUGMENT, trainer.DEFAULT_LR_SCHEDULE, trainer.DEFAULT_ZOOM_JITTER,
        trainer.DEFAULT_COLOR_JITTER)
    assert train.build_parser().parse_args(["d", "LRCN", "m", "--no-augment"]).augment == "none"
    # The run-length BatchNorm momentum: 1 - 20 / steps, within [0.9, 0.99].
    config = _config(dataset_dir, tmp_path)
    assert config.bn_momentum_for(100) == 0.9
    assert config.bn_momentum_for(400) == 1 - 20 / 400
    assert config.bn_momentum_for(10_000) == 0.99
    assert _config(dataset_dir, tmp_path, bn_momentum=0.5).bn_momentum_for(400) == 0.5
    assert _config(dataset_dir, tmp_path, lr=None).peak_lr == (
        models.DEFAULT_LEARNING_RATES["DUMMY"])
    assert config.peak_lr == 1e-2
    model = models.build_model("ConvNet3D", 2, 16, 1, 3, bn_momentum=0.9)
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 5 and all(layer.momentum == 0.9 for layer in norms)
    with pytest.raises(ValueError, match="bn_momentum"):
        _config(dataset_dir, tmp_path, bn_momentum=1.0)
    with pytest.raises(ActrecogError, match="bn_momentum"):
        models.build_model("LRCN", 2, 48, 1, 3, bn_momentum=0)


# Colour jitter is off by default; zoom jitter on (its plain run sets 0 explicitly).
@pytest.mark.parametrize("option,value,default,plain", [
    ("color_jitter", 0.4, 0.0, {}),
    ("zoom_jitter", 0.2, trainer.DEFAULT_ZOOM_JITTER, {"zoom_jitter": 0.0})])
def test_jitter_reaches_the_train_pipeline_only(option, value, default, plain, dataset_dir,
                                                tmp_path):
    import train

    flag = "--" + option.replace("_", "-")
    assert getattr(train.build_parser().parse_args(["d", "LRCN", "m"]), option) == default
    assert getattr(train.build_parser().parse_args(
        ["d", "LRCN", "m", flag, str(value)]), option) == value
    manifest = manifest_lib.load_manifest(dataset_dir)
    unchanged = _config(dataset_dir, tmp_path, augment=False, **plain)
    jittered = _config(dataset_dir, tmp_path, augment=False, **{option: value})

    def first(make, config, *args):
        pixels, labels = next(iter(make(config, manifest, *args)))
        return pixels.numpy(), labels.numpy()

    train_plain = first(trainer.make_train_dataset, unchanged, 0, 2)
    train_jittered = first(trainer.make_train_dataset, jittered, 0, 2)
    np.testing.assert_array_equal(train_plain[1], train_jittered[1])
    assert not np.array_equal(train_plain[0], train_jittered[0])
    for config in (unchanged, jittered):
        np.testing.assert_array_equal(first(trainer.make_eval_dataset, config, 1)[0],
                                      first(trainer.make_eval_dataset, unchanged, 1)[0])
    with pytest.raises(ValueError, match=option):
        _config(dataset_dir, tmp_path, **{option: 1.0})


def test_label_smoothing_smooths_the_train_loss_only(dataset_dir, tmp_path):
    import keras
    import train
    from coreLib import models
    from coreLib.training import optimizer as optimizer_lib

    assert train.build_parser().parse_args(["d", "LRCN", "m"]).label_smoothing == 0.0
    assert train.DEFAULT_LABEL_SMOOTHING == trainer.DEFAULT_LABEL_SMOOTHING == 0.0
    assert train.build_parser().parse_args(
        ["d", "LRCN", "m", "--label-smoothing", "0"]).label_smoothing == 0.0
    assert train.build_parser().parse_args(
        ["d", "LRCN", "m", "--label-smoothing", "0.2"]).label_smoothing == 0.2
    assert _config(dataset_dir, tmp_path, label_smoothing=0.2).label_smoothing == 0.2
    with pytest.raises(ValueError, match="label_smoothing"):
        _config(dataset_dir, tmp_path, label_smoothing=1.0)
    rng = np.random.default_rng(0)
    pixels = rng.random((4, 2, 8, 8, 1), dtype=np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    keras.utils.set_random_seed(0)
    model = models.build_model("DUMMY", 2, 8, 1, 3)
    log_p = np.log(np.clip(model(pixels, training=False).numpy(), 1e-7, 1 - 1e-7))
    penalty = sum(float(term) for term in model.losses)
    plain = -(labels * log_p).sum(axis=1).mean() + penalty
    smoothed = -((0.8 * labels + 0.2 / 3) * log_p).sum(axis=1).mean() + penalty
    assert abs(smoothed - plain) > 1e-3   # the two differ by far more than rtol
    strategy = tf.distribute.get_strategy()
    optimizer = optimizer_lib.make_optimizer(1e-2)
    optimizer.build(model.trainable_variables)
    train_loop, eval_loop = trainer.make_step_loops(strategy, model, optimizer, 4,
                                                    label_smoothing=0.2)

    def one_batch():
        dataset = tf.data.Dataset.from_tensor_slices((pixels, labels)).batch(4)
        return iter(strategy.experimental_distribute_dataset(dataset))

    evaluated = eval_loop(one_batch(), tf.constant(1))
    np.testing.assert_allclose(float(evaluated["loss_sum"]), plain, rtol=1e-6)
    trained = train_loop(one_batch(), tf.constant(1))   # the loss before the update
    np.testing.assert_allclose(float(trained["loss_sum"]), smoothed, rtol=1e-6)
    assert float(trained["correct"]) == float(evaluated["correct"])


def test_mixup_reaches_the_train_pipeline_only(dataset_dir, tmp_path):
    import train
    from coreLib.training import epoch_datasets

    assert train.build_parser().parse_args(["d", "LRCN", "m"]).mixup == 0.0
    assert train.DEFAULT_MIXUP == trainer.DEFAULT_MIXUP == 0.0
    assert train.build_parser().parse_args(["d", "LRCN", "m", "--mixup", "0.4"]).mixup == 0.4
    config = _config(dataset_dir, tmp_path, mixup=0.4)
    assert epoch_datasets.pipeline_config(config, 1, training=True).mixup == 0.4
    for bad in (-1.0, float("inf")):
        with pytest.raises(ValueError, match="mixup"):
            _config(dataset_dir, tmp_path, mixup=bad)


@pytest.mark.slow
def test_cosine_schedule_resumes_on_the_same_curve(dataset_dir, tmp_path):
    config = dict(epochs=2, steps_per_epoch=3, lr=5e-3, lr_schedule="cosine")
    straight = str(tmp_path / "straight")
    trainer.run_training(_config(dataset_dir, straight, **config), progress=False)
    resumed = str(tmp_path / "resumed")
    trainer.run_training(_config(dataset_dir, resumed, **config), progress=False)
    # As if killed right after epoch 1's checkpoint: the state points back at it.
    checkpoints = os.path.join(resumed, "checkpoints")
    state = tf.train.get_checkpoint_state(checkpoints)
    epoch_one = [path for path in state.all_model_checkpoint_paths
                 if path.endswith("ckpt-3")]
    assert len(epoch_one) == 1
    tf.compat.v1.train.update_checkpoint_state(checkpoints, epoch_one[0],
                                               all_model_checkpoint_paths=epoch_one)
    again = trainer.run_training(_config(dataset_dir, resumed, **config), progress=False)
    assert again.resumed_from_step == 3 and again.global_step == 6
    # The optimizer's step counter came back with the checkpoint, so epoch 2 took
    # the same (decaying) steps: the final weights are bit-identical.
    expected = h5_arrays(os.path.join(straight, "DUMMY_final.weights.h5"))
    actual = h5_arrays(os.path.join(resumed, "DUMMY_final.weights.h5"))
    assert expected.keys() == actual.keys() and len(expected) > 0
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])


@pytest.mark.parametrize("model_name, image_dim, reason", [
    ("LRCN", 16, "image_dim 16 is too small"),           # LRCN on small frames
    ("CausalMobileNet", 3, "image_dim 3 is too"),        # after main.py --image-dim 3
])
def test_a_refused_run_writes_nothing(tmp_path, model_name, image_dim, reason):
    folder = _dataset_of_shape(tmp_path, image_dim)
    model_dir = tmp_path / "model"
    with pytest.raises(ActrecogError, match=reason):
        trainer.run_training(_config(folder, model_dir, model_name=model_name),
                             progress=False)
    assert not model_dir.exists()
    model_dir.mkdir()   # an existing, empty MODEL_DIR stays empty
    with pytest.raises(ActrecogError, match=reason):
        trainer.run_training(_config(folder, model_dir, model_name=model_name),
                             progress=False)
    assert os.listdir(model_dir) == []


def test_a_run_config_without_a_checkpoint_is_not_a_run(tmp_path):
    # What an earlier release left after a refused LRCN run (or a run killed before
    # its first checkpoint): run_config.json alone. It must not lock MODEL_DIR.
    folder = _dataset_of_shape(tmp_path, 8)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    manifest = manifest_lib.load_manifest(folder)
    stale = trainer.run_config_of(_config(folder, model_dir, model_name="LRCN"), manifest)
    (model_dir / trainer.RUN_CONFIG_NAME).write_text(json.dumps(stale))
    result = trainer.run_training(_config(folder, model_dir, epochs=1), progress=False)
    assert [entry["epoch"] for entry in result.history] == [1]
    stored = json.loads((model_dir / trainer.RUN_CONFIG_NAME).read_text())
    assert stored == trainer.run_config_of(_config(folder, model_dir), manifest)
    # Once it holds a checkpoint it is a run: another model is refused.
    with pytest.raises(ActrecogError, match="holds checkpoints of model DUMMY.*not LRCN"):
        trainer.run_training(_config(folder, model_dir, model_name="LRCN"), progress=False)
