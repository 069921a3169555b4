"""The three models: parameter counts, layer order, regularisers, dtypes, errors."""

import numpy as np
import pytest

from coreLib import models
from coreLib.errors import ActrecogError

import keras  # noqa: E402  (conftest imported TensorFlow quietly first)

SHAPE = (6, 64, 3, 17)  # seq_len, image_dim, channels, num_classes: (6, 64, 64, 3) windows


def layer_kinds(model):
    """Class names, with the wrapped layer for TimeDistributed (``TD:Conv2D``)."""
    kinds = []
    for layer in model.layers:
        name = type(layer).__name__
        if isinstance(layer, keras.layers.TimeDistributed):
            name = f"TD:{type(layer.layer).__name__}"
        kinds.append(name)
    return kinds


@pytest.fixture(scope="module")
def convnet3d():
    return models.build_model("ConvNet3D", *SHAPE)


@pytest.fixture(scope="module")
def lrcn():
    return models.build_model("LRCN", *SHAPE)


def test_convnet3d_parameters_and_layer_order(convnet3d):
    assert convnet3d.name == "ConvNet3D"
    assert convnet3d.count_params() == 95_291_025
    block = ["MaxPooling3D", "ReLU", "BatchNormalization"]
    expected = (["InputLayer", "Conv3D"] + block
                + (["Conv3D", "Conv3D"] + block) * 4
                + ["Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense"])
    assert layer_kinds(convnet3d) == expected
    convs = [layer for layer in convnet3d.layers if isinstance(layer, keras.layers.Conv3D)]
    assert [layer.filters for layer in convs] == [64, 128, 128, 256, 256, 512, 512, 512, 512]
    for layer in convs:
        assert layer.kernel_size == (3, 3, 3) and layer.padding == "same"
        assert layer.activation.__name__ == "relu"
        assert float(layer.kernel_regularizer.l2) == pytest.approx(1e-4)
    pools = [layer.pool_size for layer in convnet3d.layers
             if isinstance(layer, keras.layers.MaxPooling3D)]
    assert pools == [(1, 2, 2)] * 5
    dense = [layer for layer in convnet3d.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [4096, 4096, 17]
    assert [layer.kernel_regularizer for layer in dense] == [None, None, None]
    assert dense[-1].activation.__name__ == "softmax"
    assert [layer.rate for layer in convnet3d.layers
            if isinstance(layer, keras.layers.Dropout)] == [0.2, 0.2]
    assert tuple(convnet3d.input_shape) == (None, 6, 64, 64, 3)
    assert tuple(convnet3d.output_shape) == (None, 17)


def test_lrcn_parameters_and_layer_order(lrcn):
    assert lrcn.name == "LRCN"
    assert lrcn.count_params() == 2_530_941
    block = ["TD:Conv2D", "TD:MaxPooling2D", "TD:ReLU", "BatchNormalization"]
    expected = (["InputLayer"] + block * 3 + ["TD:Flatten"] + ["LSTM"] * 4
                + ["Dense", "Dropout", "Dense", "Dropout", "Dense"])
    assert layer_kinds(lrcn) == expected
    convs = [layer.layer for layer in lrcn.layers
             if isinstance(layer, keras.layers.TimeDistributed)
             and isinstance(layer.layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [128, 256, 512]
    for layer in convs:
        assert layer.strides == (2, 2) and layer.padding == "same"
        assert float(layer.kernel_regularizer.l2) == pytest.approx(1e-4)
    lstms = [layer for layer in lrcn.layers if isinstance(layer, keras.layers.LSTM)]
    assert [(layer.units, layer.return_sequences) for layer in lstms] == [
        (256, True), (128, True), (64, True), (32, False)]
    dense = [layer for layer in lrcn.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [28, 24, 17]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "softmax"]
    assert tuple(lrcn.output_shape) == (None, 17)


def test_dummy_layers_and_prediction():
    model = models.build_model("DUMMY", 2, 8, 1, 3)
    assert model.name == "DUMMY"
    assert layer_kinds(model) == ["InputLayer", "Conv3D", "Flatten", "Dense"]
    # conv 3*3*3*1*8+8, dense 2*8*8*8*3+3
    assert model.count_params() == 224 + 3075
    probabilities = model(np.zeros((4, 2, 8, 8, 1), np.float32)).numpy()
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_layer_names_do_not_depend_on_build_order():
    first = [layer.name for layer in models.build_model("DUMMY", 2, 8, 1, 3).layers]
    second = [layer.name for layer in models.build_model("DUMMY", 2, 8, 1, 3).layers]
    assert first == second == ["window", "conv", "flatten", "probabilities"]


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ActrecogError) as error:
        models.build_model("convnet3d", *SHAPE)
    message = str(error.value)
    assert "'convnet3d'" in message
    for name in ("ConvNet3D", "LRCN", "DUMMY"):
        assert name in message
    assert models.MODEL_BUILDERS["LRCN"] is models.build_lrcn


def test_too_small_inputs_name_the_minimum():
    with pytest.raises(ActrecogError, match="LRCN: image_dim 42 .* >= 43"):
        models.build_model("LRCN", 6, 42, 3, 17)
    # The minima really are the smallest sizes that build.
    # ConvNet3D pools 'same': any frame side builds, e.g. the demo's 16 or an odd 20.
    small = models.build_model("ConvNet3D", 6, 16, 3, 17)
    assert small.get_layer("flatten").output.shape[1] == 6 * 1 * 1 * 512
    assert models.build_model("ConvNet3D", 1, 20, 1, 2).output_shape == (None, 2)
    assert all(layer.padding == "same" for layer in small.layers
               if isinstance(layer, keras.layers.MaxPooling3D))
    assert models.build_model("LRCN", 1, 43, 1, 2).output_shape == (None, 2)
    with pytest.raises(ActrecogError, match="seq_len must be a positive integer, got 0"):
        models.build_model("DUMMY", 0, 8, 1, 3)
    with pytest.raises(ActrecogError, match="num_classes must be an integer >= 2"):
        models.build_model("DUMMY", 2, 8, 1, 1)


def test_every_table_is_a_view_of_the_one_record_per_model():
    from coreLib.inference import stream_steps
    from coreLib.models.stream_runner import StreamRunner
    assert models.MODEL_NAMES == tuple(models.MODEL_RECORDS)
    for name, record in models.MODEL_RECORDS.items():
        assert record.name == name
        assert models.get_model_builder(name) is record.builder
        assert models.MODEL_BUILDERS[name] is record.builder
        assert models.DEFAULT_LEARNING_RATES[name] == record.default_peak_step
    # The records' minima are the builders' (checked to build above and refused
    # below): LRCN 43, CausalMobileNet 8; the others any side.
    assert {name: record.min_image_dim for name, record in models.MODEL_RECORDS.items()} == {
        "ConvNet3D": 1, "LRCN": 43, "DUMMY": 1, "CausalMobileNet": 8}
    for name in ("LRCN", "CausalMobileNet"):
        with pytest.raises(ActrecogError, match="too small"):
            models.build_model(name, 1, models.MODEL_RECORDS[name].min_image_dim - 1, 1, 2)
    # Only the streaming model has a stream runner, and detection reads it there.
    assert {name: record.stream_runner for name, record in models.MODEL_RECORDS.items()
            if record.stream_runner} == {"CausalMobileNet": StreamRunner}
    assert stream_steps.stream_step_builder("LRCN") is None
    assert stream_steps.stream_step_builder("CausalMobileNet") is not None
    # export.py's stream mode and int8 rewrite, detection's per-frame split: read
    # from the records, nowhere else by name.
    from coreLib.models import litert_layers, streaming
    assert {name: (record.stream_model, record.int8_rewrite)
            for name, record in models.MODEL_RECORDS.items()
            if record.stream_model or record.int8_rewrite} == {
        "CausalMobileNet": (streaming.build_stream_model,
                            litert_layers.causal_mobilenet_int8_rewrite)}
    assert {name: record.frame_split for name, record in models.MODEL_RECORDS.items()
            if record.frame_split} == {"LRCN": models.lrcn_frame_and_head}


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_a_float32_softmax(policy):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = models.build_model("DUMMY", 2, 8, 1, 3)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    compute = policy.split("_")[1]
    assert model.get_layer("conv").compute_dtype == compute
    assert model.get_layer("probabilities").compute_dtype == "float32"
    output = model(np.ones((2, 2, 8, 8, 1), np.float32))
    assert output.dtype == "float32"
    np.testing.assert_allclose(output.numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_drawing_lists_the_built_layers(tmp_path, lrcn):
    from coreLib.models import model_info

    rows = model_info.draw_model(lrcn, str(tmp_path / "LRCN.png"))
    assert [row.name for row in rows] == [layer.name for layer in lrcn.layers]
    assert [row.output_shape for row in rows] == [tuple(layer.output.shape)
                                                 for layer in lrcn.layers]
    assert sum(row.params for row in rows) == 2_530_941
    assert rows[1].class_name == "TimeDistributed(Conv2D)"
    assert rows[-1].output_shape == (None, 17)
    assert (tmp_path / "LRCN.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = model_info.summary_text(lrcn)
    assert text.count("\n") == len(rows) + 7
    assert "Total params: 2,530,941" in text and "lstm4" in text


def test_info_command_writes_png_and_text(tmp_path, capsys):
    from coreLib.models import model_info

    assert model_info.main(["info", "--models", "DUMMY", "--output-dir",
                            str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["DUMMY.png", "DUMMY.txt"]
    assert "probabilities" in (tmp_path / "DUMMY.txt").read_text()
    with pytest.raises(ActrecogError, match="unknown model name 'C3D'"):
        model_info.main(["info", "--models", "C3D", "--output-dir", str(tmp_path)])


def test_model_flops_counts_convnet3d_and_lrcn_arithmetic():
    from coreLib.models import model_info

    # ConvNet3D at (2, 16, 16, 1), 3 classes, written out block by block: frames keep
    # their count, each pool halves the side ('same' pooling: 1 stays 1).
    seq_len, side, macs, channels = 2, 16, 0, 1
    macs += seq_len * side * side * 27 * channels * 64
    channels, side = 64, side // 2
    for filters in models.CONVNET3D_BLOCK_FILTERS:
        macs += seq_len * side * side * 27 * (channels * filters + filters * filters)
        channels, side = filters, max(1, side // 2)
    features = seq_len * side * side * channels
    macs += features * 4096 + 4096 * 4096 + 4096 * 3
    convnet3d = models.build_model("ConvNet3D", 2, 16, 1, 3)
    assert model_info.model_flops(convnet3d) == 2 * macs
    # The published shape: 27.57 GFLOP per window (what makes CPU scoring slow).
    assert model_info.model_flops(models.build_model("ConvNet3D", 6, 64, 3, 17)) \
        == 27_568_250_880
    # LRCN: its LSTMs count 4 gates over (inputs + units) per step.
    lrcn = models.build_model("LRCN", 4, 48, 1, 5)
    lstm_macs = 0
    for layer in lrcn.layers:
        if type(layer).__name__ == "LSTM":
            inputs, units = layer.input.shape[-1], layer.units
            lstm_macs += 4 * 4 * (inputs + units) * units
    assert lstm_macs > 0
    assert model_info.model_flops(lrcn) > 2 * lstm_macs
