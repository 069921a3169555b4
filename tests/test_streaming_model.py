"""CausalMobileNet: FLOP count, stream == window, causality, shapes, learning, errors."""

import dataclasses

import numpy as np
import pytest

from coreLib import models
from coreLib.models import constants, model_info
from coreLib.models import streaming as sm
from coreLib.models.stream_runner import StreamRunner
from coreLib.errors import ActrecogError

import keras  # noqa: E402  (conftest imported TensorFlow quietly first)

NAME = sm.CAUSAL_MOBILENET_NAME


def with_trained_statistics(model, windows, seed: int = 0):
    """Sets every BatchNorm's moving statistics to those of ``windows`` (as a run
    that converged would) and the scales/offsets to random values, so inference
    differs from the freshly built identity normalisation."""
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
        layer.beta.assign(rng.normal(0.0, 0.2, layer.beta.shape))
    # One norm at a time: each sees the statistics of its input under the norms
    # before it, already in inference mode.
    for layer in norms:
        features = keras.Model(model.input, layer.input)(windows, training=False)
        axes = tuple(range(len(features.shape) - 1))
        layer.moving_mean.assign(np.mean(features, axis=axes))
        layer.moving_variance.assign(np.var(features, axis=axes) + 1e-3)
    return model


def random_windows(count, seq_len, image_dim, channels, seed=1):
    return np.random.default_rng(seed).random(
        (count, seq_len, image_dim, image_dim, channels)).astype(np.float32)


@pytest.fixture(scope="module")
def trained_like():
    """A (6, 16, 16, 3) model with data-fitted BN statistics, and its windows."""
    keras.utils.set_random_seed(4)
    windows = random_windows(3, 6, 16, 3)
    model = models.build_model(NAME, 6, 16, 3, 5)
    return with_trained_statistics(model, windows), windows


def test_flops_of_one_block_by_hand():
    # (2, 32, 32, 1): the 2x2/2 stem leaves 16x16 frames, block 1 (stride 2) 8x8;
    # block 2 keeps 8x8 (stride 1) with 32 channels in and out, expanded to 96.
    model = models.build_model(NAME, 2, 32, 1, 3)
    frames, positions = 2, 8 * 8
    by_hand = {
        "block2_expand": frames * positions * 32 * 96,    # 1x1: in x out per position
        "block2_spatial": frames * positions * 3 * 3 * 96,  # depthwise 3x3 per channel
        "block2_temporal": frames * positions * 2 * 96,     # 2 frames per channel
        "block2_project": frames * positions * 96 * 32,
    }
    counted = {name: model_info.layer_multiply_adds(model.get_layer(name))
               for name in by_hand}
    assert counted == by_hand
    for name in ("block2_expand_norm", "block2_temporal_relu", "block2_add", "pool"):
        assert model_info.layer_multiply_adds(model.get_layer(name)) == 0
    # The whole model: the stem (2x2x1 patches to 24 channels) and the classifier
    # are counted once per frame and once per window.
    stem = frames * 16 * 16 * 2 * 2 * 1 * 24
    head = 192 * sm.HEAD_DENSE_UNITS + sm.HEAD_DENSE_UNITS * 3
    assert model_info.layer_multiply_adds(model.get_layer("stem_conv")) == stem
    assert model_info.layer_multiply_adds(model.get_layer("fc1")) \
        + model_info.layer_multiply_adds(model.get_layer("probabilities")) == head


def test_at_most_100_mflop_per_published_window():
    flops = model_info.model_flops(models.build_model(NAME, 6, 64, 3, 17))
    assert flops == 86_020_352
    assert flops <= 100_000_000
    # 1/320 of ConvNet3D's 27,568,250,880 (pinned in test_models.py).
    assert 27_568_250_880 // flops == 320


def test_stream_frame_by_frame_equals_the_window(trained_like):
    model, windows = trained_like
    whole = model.predict_on_batch(windows)
    per_frame = sm.build_per_frame_model(model).predict_on_batch(windows)
    streamed = StreamRunner(model, batch_size=len(windows)).run(windows)
    assert streamed.shape == per_frame.shape == (3, 6, 5)
    np.testing.assert_allclose(streamed[:, -1], whole, atol=1e-5, rtol=0)
    np.testing.assert_allclose(streamed, per_frame, atol=1e-5, rtol=0)
    # Not a constant model: frames and windows are told apart (by far more than
    # the 1e-5 agreement above; noise windows differ little after the pooling).
    assert np.ptp(whole, axis=0).max() > 0.02
    assert np.ptp(per_frame, axis=1).max() > 0.02


def test_stream_runs_on_past_the_window_at_a_fixed_state_size(trained_like):
    model, windows = trained_like
    runner = StreamRunner(model, batch_size=1)
    shapes = {name: tuple(value.shape) for name, value in runner.state.items()}
    longer = np.concatenate([windows[:1]] * 3, axis=1)       # 18 frames
    outputs = runner.run(longer)
    assert {name: tuple(value.shape) for name, value in runner.state.items()} == shapes
    # The pooling's count stops at the window length: past it the mean is over
    # the last L frames, never growing stale.
    assert float(np.asarray(runner.state[sm.POOL_COUNT_NAME])[0, 0]) == 6.0
    assert shapes[sm.POOL_HISTORY_NAME] == (1, 5, sm.HEAD_FILTERS)
    assert np.isfinite(outputs).all()
    # After a reset the first six frames give the window output again.
    runner.reset()
    np.testing.assert_allclose(runner.run(windows[:1])[:, -1], outputs[:, 5], atol=1e-5)


@pytest.mark.parametrize("horizon", [1, 2, 6])
def test_stream_pooling_is_the_box_mean_of_the_last_l_frames(horizon):
    rng = np.random.default_rng(horizon)
    features = rng.normal(size=(2, 20, 3, 3, 4)).astype(np.float32)
    pool = sm.CumulativeAveragePooling(horizon=horizon, dtype="float32")
    history = np.zeros((2, max(horizon - 1, 1), 4), np.float32)
    count = np.zeros((2, 1), np.float32)
    streamed = []
    for t in range(20):
        averages, history, count = pool([features[:, t:t + 1], history, count])
        streamed.append(np.asarray(averages)[:, 0])
    frame_means = features.mean(axis=(2, 3))
    expected = np.stack([frame_means[:, max(0, t - horizon + 1):t + 1].mean(axis=1)
                         for t in range(20)], axis=1)
    np.testing.assert_allclose(np.stack(streamed, axis=1), expected, atol=1e-5, rtol=0)
    assert np.asarray(count).tolist() == [[float(horizon)]] * 2
    # The window path (frames 1..T, T <= L) leaves the state the stream would.
    window = features[:, :horizon]
    _, window_history, window_count = pool(window)
    _, stream_history, stream_count = pool([window, np.zeros_like(history),
                                            np.zeros_like(count)])
    np.testing.assert_allclose(np.asarray(window_history), np.asarray(stream_history),
                               atol=1e-6)
    np.testing.assert_array_equal(np.asarray(window_count), np.asarray(stream_count))


def test_outputs_up_to_frame_t_do_not_see_later_frames(trained_like):
    model, windows = trained_like
    per_frame = sm.build_per_frame_model(model)
    before = per_frame.predict_on_batch(windows)
    for t in range(5):
        changed = windows.copy()
        changed[:, t + 1:] = random_windows(3, 5 - t, 16, 3, seed=10 + t)
        after = per_frame.predict_on_batch(changed)
        np.testing.assert_allclose(after[:, :t + 1], before[:, :t + 1], atol=1e-6, rtol=0)
        assert np.abs(after[:, t + 1:] - before[:, t + 1:]).max() > 1e-3


@pytest.mark.parametrize("seq_len, image_dim, channels", [(1, 16, 1), (1, 64, 3),
                                                          (6, 64, 1), (3, 20, 3)])
def test_builds_for_any_length_side_and_channels(seq_len, image_dim, channels):
    model = models.build_model(NAME, seq_len, image_dim, channels, 4)
    assert model.name == NAME and model.output_shape == (None, 4)
    assert model.get_layer("probabilities").activation.__name__ == "softmax"
    windows = random_windows(2, seq_len, image_dim, channels)
    whole = model(windows, training=False).numpy()
    np.testing.assert_allclose(whole.sum(axis=1), 1.0, rtol=1e-5)
    streamed = StreamRunner(model, batch_size=2, compile=False).run(windows)
    np.testing.assert_allclose(streamed[:, -1], whole, atol=1e-5, rtol=0)
    specs = sm.stream_state_specs(model)
    assert specs[sm.POOL_COUNT_NAME] == sm.StateSpec((1,), "float32")
    buffers = [name for name in specs if name.endswith(sm.STATE_BUFFER_SUFFIX)]
    assert len(buffers) == len(sm.BLOCKS)
    assert all(specs[name].shape[0] == sm.TEMPORAL_KERNEL - 1 for name in buffers)


def test_the_registry_and_defaults_agree():
    assert models.MODEL_BUILDERS[NAME] is sm.build_causal_mobilenet
    assert NAME in models.MODEL_NAMES
    # One set of defaults (coreLib.models.constants), and the builder uses it.
    assert (models.BN_MOMENTUM, models.L2_FACTOR, models.DROPOUT_RATE) == (
        constants.BN_MOMENTUM, constants.L2_FACTOR, constants.DROPOUT_RATE)
    default = models.build_model(NAME, 2, 16, 1, 3)
    assert {layer.momentum for layer in default.layers
            if isinstance(layer, keras.layers.BatchNormalization)} == {constants.BN_MOMENTUM}
    assert default.get_layer("fc1_dropout").rate == constants.DROPOUT_RATE
    assert float(default.get_layer("fc1").kernel_regularizer.l2) == pytest.approx(
        constants.L2_FACTOR)
    model = models.build_model(NAME, 2, 16, 1, 3, bn_momentum=0.9)
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    # The stem's, three per block (two in block 1: no expansion), the head's.
    assert len(norms) == 1 + 3 * len(sm.BLOCKS) - 1 + 1
    assert {layer.momentum for layer in norms} == {0.9}


def test_mixed_precision_keeps_float32_probabilities_and_state_sums():
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = models.build_model(NAME, 2, 16, 1, 3)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert model.get_layer("block2_expand").compute_dtype == "bfloat16"
    assert model.get_layer("probabilities").compute_dtype == "float32"
    specs = sm.stream_state_specs(model)
    assert specs["block1_temporal_buffer"].dtype == "bfloat16"
    assert specs[sm.POOL_HISTORY_NAME].dtype == "float32"
    windows = random_windows(2, 2, 16, 1)
    whole = model(windows, training=False).numpy()
    assert whole.dtype == np.float32
    streamed = StreamRunner(model, batch_size=2, compile=False).run(windows)
    assert streamed.dtype == np.float32
    np.testing.assert_allclose(streamed[:, -1], whole, atol=2e-2)


def moving_squares(count: int, seq_len: int, image_dim: int, rng):
    """``(count, L, D, D, 1)`` float32 windows of a bright 3x3 square stepping 2 px
    per frame, leftwards (label 0) or rightwards (label 1): both classes visit the
    same positions, only the order differs, so only motion tells them apart."""
    windows = np.full((count, seq_len, image_dim, image_dim, 1), 0.1, np.float32)
    labels = np.arange(count) % 2
    for index, label in enumerate(labels):
        row = rng.integers(0, image_dim - 3 + 1)
        leftmost = rng.integers(0, image_dim - 3 - 2 * (seq_len - 1) + 1)
        columns = leftmost + 2 * np.arange(seq_len)
        for frame, column in enumerate(columns if label else columns[::-1]):
            windows[index, frame, row:row + 3, column:column + 3, 0] = 1.0
    return windows, labels


@pytest.mark.slow
def test_learns_left_from_right_with_the_training_loop():
    from coreLib.training import optimizer as optimizer_lib
    from coreLib.training import trainer

    tf = trainer.tf
    rng = np.random.default_rng(0)
    train_windows, train_labels = moving_squares(64, 4, 16, rng)
    test_windows, test_labels = moving_squares(32, 4, 16, rng)
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.get_strategy()
    # A short run: the moving statistics must follow it (see train.py --bn-momentum).
    model = models.build_model(NAME, 4, 16, 1, 2, bn_momentum=0.5)
    optimizer = optimizer_lib.make_optimizer(1e-2)
    optimizer.build(model.trainable_variables)
    train_loop, _ = trainer.make_step_loops(strategy, model, optimizer, global_batch=16)
    dataset = tf.data.Dataset.from_tensor_slices(
        (train_windows, tf.one_hot(train_labels, 2))).shuffle(64, seed=0).repeat().batch(16)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    first = train_loop(iterator, tf.constant(4))
    train_loop(iterator, tf.constant(60))
    last = train_loop(iterator, tf.constant(4))
    assert float(last["loss_sum"]) < 0.25 * float(first["loss_sum"])
    # Inference mode (moving statistics), every training window right.
    predicted = model(train_windows, training=False).numpy().argmax(axis=1)
    assert (predicted == train_labels).mean() == 1.0
    # Unseen windows of the same motions: most right after 68 steps.
    unseen = model(test_windows, training=False).numpy().argmax(axis=1)
    assert (unseen == test_labels).mean() >= 0.75


def test_weights_load_back_through_scoring(tmp_path, trained_like):
    from coreLib.data import manifest as manifest_lib
    from coreLib.inference import model_loading

    model, windows = trained_like
    path = str(tmp_path / "CausalMobileNet.weights.h5")
    model.save_weights(path)
    manifest = manifest_lib.Manifest(tuple(f"class-{index}" for index in range(4))
                                     + (manifest_lib.NO_ACTION,), 6, 16, 3, "color",
                                     "uint8", False, {}, "test")
    loaded = model_loading.load_model(NAME, path, manifest)
    np.testing.assert_array_equal(loaded.predict_on_batch(windows),
                                  model.predict_on_batch(windows))
    with pytest.raises(ActrecogError, match="another input shape"):
        model_loading.load_model(NAME, path, dataclasses.replace(manifest, channels=1))


def test_bad_sizes_and_states_name_the_problem(trained_like):
    with pytest.raises(ActrecogError, match=r"CausalMobileNet: image_dim 7 is too small.*>= 8"):
        models.build_model(NAME, 6, 7, 3, 17)
    with pytest.raises(ActrecogError, match="CausalMobileNet: seq_len must be a positive "
                                            "integer, got 0"):
        models.build_model(NAME, 0, 16, 3, 17)
    with pytest.raises(ActrecogError, match="num_classes must be an integer >= 2"):
        models.build_model(NAME, 2, 16, 3, 1)
    model, windows = trained_like
    runner = StreamRunner(model, batch_size=2)
    state = dict(runner.state)
    state["block3_temporal_buffer"] = np.zeros((2, 1, 1, 1, 96), np.float32)
    with pytest.raises(ActrecogError) as error:
        runner.set_state(state)
    assert str(error.value) == ("stream state block3_temporal_buffer: shape (2, 1, 1, 1, "
                                "96), expected (2, 1, 2, 2, 96)")
    del state["block3_temporal_buffer"]
    with pytest.raises(ActrecogError, match=r"missing \['block3_temporal_buffer'\]"):
        runner.set_state(state)
    with pytest.raises(ActrecogError, match=r"stream frame: shape \(1, 16, 16, 3\), "
                                            r"expected \(2, 16, 16, 3\)"):
        runner.step(windows[:1, 0])
    with pytest.raises(ActrecogError, match="stream batch_size must be a positive"):
        StreamRunner(model, batch_size=0)
    with pytest.raises(ActrecogError, match="needs a CausalMobileNet window model, got "
                                            "'DUMMY'"):
        sm.build_stream_model(models.build_model("DUMMY", 2, 8, 1, 3))
