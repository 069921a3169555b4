"""export.py / coreLib.export.export_model / coreLib.inference.exported_model on tiny generated data.

The window model is test_scoring's hand-set DUMMY (8x8 colour windows of 3
frames, every window predicted right by construction); two of its Test windows
are mislabelled on purpose so the accuracy is not 100 %. ConvNet3D and LRCN are
checked at the Keras level (rebuilt for LiteRT = original within 1e-6) at tiny
shapes; the LiteRT conversion of their layer types is checked on a small model
made of the same layers.
"""

import json
import os

import numpy as np
import pytest

import test_scoring
from conftest import run_tool
from coreLib import models, storage
from coreLib.export import (config as config_lib, export_model, litert, publish, rebuild,
                            saved_model)
from coreLib.inference import exported_model
from coreLib.preprocessing import records
from coreLib.errors import ActrecogError

MISLABELLED = (1, 4)
# 9 Test windows, 2 of them mislabelled: 7 right.
EXPECTED_ACCURACY_LINE = f"Test data Prediction Accuracy [F1 accuracy]: {7 / 9 * 100}"
FLOAT_FORMATS = ("saved_model", "float32", "fp16", "dynamic")
LITERT_FILES = ("DUMMY.tflite", "DUMMY_fp16.tflite", "DUMMY_dynamic.tflite",
                "DUMMY_stream.tflite")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """(root, Test JSON, DataSet folder, DUMMY weights) of the hand-set DUMMY."""
    root = tmp_path_factory.mktemp("export")
    json_path = test_scoring.make_dataset(root, mislabel=MISLABELLED)
    weights = root / "DUMMY.weights.h5"
    test_scoring.perfect_dummy().save_weights(str(weights))
    return root, json_path, os.path.dirname(json_path), str(weights)


@pytest.fixture(scope="module")
def dummy_export(dataset):
    """Every format plus the window-buffer stream step, parity on the Test JSON."""
    root, json_path, dataset_dir, weights = dataset
    out_dir = str(root / "exported")
    config = export_model.ExportConfig("DUMMY", weights, out_dir, manifest_dir=dataset_dir,
                                       parity_json=json_path, window_stream=True,
                                       formats=FLOAT_FORMATS)
    return out_dir, export_model.export(config)


def test_export_writes_every_format_described_by_export_json(dummy_export, dataset):
    out_dir, result = dummy_export
    _, json_path, _, weights = dataset
    assert sorted(os.listdir(out_dir)) == sorted(("export.json", "saved_model")
                                                 + LITERT_FILES)
    description = json.loads(open(os.path.join(out_dir, "export.json")).read())
    assert description == result.description
    assert description["classes"] == list(test_scoring.CLASSES)
    assert description["window_shape"] == [test_scoring.SEQ_LEN, test_scoring.IMAGE_DIM,
                                           test_scoring.IMAGE_DIM, 3]
    assert (description["modality"], description["dtype"]) == ("color", "uint8")
    assert description["source"] == {"model_path": weights,
                                     "sha256": storage.sha256_of(weights)}
    for name in LITERT_FILES:
        path = os.path.join(out_dir, name)
        entry = description["files"][name]
        assert entry["bytes"] == os.path.getsize(path)
        assert entry["sha256"] == storage.sha256_of(path)
        # Builtin kernels only, read from the file itself.
        with open(path, "rb") as handle:
            ops = litert.litert_op_names(handle.read())
        assert ops == entry["ops"]
        assert not [op for op in ops if op.startswith("CUSTOM")], ops
    assert "DEQUANTIZE" in description["files"]["DUMMY_fp16.tflite"]["ops"]
    size, digest, count = publish.folder_digest(os.path.join(out_dir, "saved_model"))
    assert description["files"]["saved_model"] == {"bytes": size, "sha256": digest,
                                                   "files": count}
    assert not [op for op in saved_model.saved_model_op_types(
        os.path.join(out_dir, "saved_model")) if op.startswith("Cudnn")]
    parity = description["parity"]
    assert parity["num_windows"] == 9
    assert parity["windows"] == f"{json_path} (9 of 9 windows)"
    assert parity["saved_model"]["max_abs_diff"] <= 1e-5
    assert parity["litert_float32"]["max_abs_diff"] <= 1e-4
    for name in ("litert_fp16", "litert_dynamic"):
        assert parity[name]["top1_agreement"] >= 0.99
    for name in ("saved_model", "litert_float32", "litert_fp16", "litert_dynamic",
                 "stream_saved_model", "stream_litert", "rebuilt_keras"):
        assert parity[name]["passed"] is True, name
    assert description["stream"]["mode"] == "window_buffer"
    assert description["stream"]["state_shapes"] == [[2, 8, 8, 3]]


def test_score_gives_the_same_accuracy_for_keras_saved_model_and_litert(
        dummy_export, dataset, capsys):
    out_dir, _ = dummy_export
    _, json_path, _, weights = dataset
    outputs = {}
    for name, path in (("keras", weights),
                       ("saved_model", os.path.join(out_dir, "saved_model")),
                       ("out_dir", out_dir),
                       ("litert", os.path.join(out_dir, "DUMMY.tflite"))):
        assert run_tool("score", ["DUMMY", path, json_path, "--batch-size", "4"]) == 0
        captured = capsys.readouterr()
        outputs[name] = captured.out.splitlines()
        assert outputs[name][0] == EXPECTED_ACCURACY_LINE, name
        assert "error" not in captured.err
    # The same table and macro F1 whatever ran the model.
    for name in ("saved_model", "out_dir", "litert"):
        assert outputs[name][:-1] == outputs["keras"][:-1]
    # Each model's Results under its own name: the exports' runs left the Keras
    # weights' files (the 1.0.4 names) alone (issue 21).
    results = os.path.join(os.path.dirname(json_path), "Results")
    stems = ("DUMMY", "DUMMY_saved_model", f"DUMMY_{os.path.basename(out_dir)}",
             "DUMMY.tflite")
    assert sorted(os.listdir(results)) == sorted(
        f"{kind}_{stem}.{suffix}" for stem in stems
        for kind, suffix in (("video_sec", "json"), ("metrics", "json"),
                             ("confusion", "png")))
    keras_metrics = json.load(open(os.path.join(results, "metrics_DUMMY.json")))
    assert keras_metrics["weights_file"] == weights


def test_loader_takes_stored_windows_and_resizes_the_batch(dummy_export, dataset):
    out_dir, _ = dummy_export
    _, _, _, weights = dataset
    keras_model = test_scoring.perfect_dummy()
    rng = np.random.default_rng(3)
    windows = rng.integers(0, 256, (7, 3, 8, 8, 3)).astype(np.uint8)
    reference = np.asarray(keras_model(records.scale_pixels(windows, "uint8")))
    saved = exported_model.load_exported(os.path.join(out_dir, "saved_model"))
    litert = exported_model.load_exported(os.path.join(out_dir, "DUMMY.tflite"),
                                          num_threads=1)
    assert (saved.kind, litert.kind) == ("saved_model", "litert")
    for batch in (1, 5, 2, 7):   # the interpreter is resized every time
        np.testing.assert_allclose(saved.predict(windows[:batch]), reference[:batch],
                                   atol=1e-5)
        np.testing.assert_allclose(litert.predict(windows[:batch]), reference[:batch],
                                   atol=1e-4)
    with pytest.raises(ActrecogError, match="must be uint8"):
        litert.predict(windows.astype(np.float32))
    with pytest.raises(ActrecogError, match="of shape"):
        litert.predict(windows[:, :2])
    with pytest.raises(ActrecogError, match="no stream_step"):
        litert.stream_step(windows[:, 0], ())


def test_stream_step_after_L_frames_equals_the_window_model(dummy_export):
    out_dir, _ = dummy_export
    windows = np.random.default_rng(4).integers(0, 256, (5, 3, 8, 8, 3)).astype(np.uint8)
    window_model = exported_model.load_exported(os.path.join(out_dir, "DUMMY.tflite"))
    expected = window_model.predict(windows)
    for path, tolerance in ((os.path.join(out_dir, "saved_model"), 1e-5),
                            (os.path.join(out_dir, "DUMMY_stream.tflite"), 1e-4)):
        stream = exported_model.load_exported(path)
        states = stream.initial_state(len(windows))
        assert [state.shape for state in states] == [(5, 2, 8, 8, 3)]
        for offset in range(3):
            probabilities, states = stream.stream_step(windows[:, offset], states)
        np.testing.assert_allclose(probabilities, expected, atol=tolerance)
        # The state is the last two frames, scaled as training scales them.
        np.testing.assert_allclose(states[0], windows[:, 1:] / np.float32(255), atol=1e-7)


def test_uint16_weights_export_from_run_config_and_clip_at_4095(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    model = models.build_model("DUMMY", 2, 8, 1, 3)
    model.save_weights(str(model_dir / "DUMMY.weights.h5"))
    (model_dir / "run_config.json").write_text(json.dumps({
        "model_name": "DUMMY", "window_shape": [2, 8, 8, 1], "num_classes": 3,
        "classes": ["a", "b", "no-action"], "modality": "depth", "dtype": "uint16"}))
    out_dir = str(tmp_path / "out")
    result = export_model.export(export_model.ExportConfig(
        "DUMMY", str(model_dir / "DUMMY.weights.h5"), out_dir,
        formats=("saved_model", "float32"), parity_windows=8))
    assert sorted(os.listdir(out_dir)) == ["DUMMY.tflite", "export.json", "saved_model"]
    assert result.description["parity"]["windows"] == ("random (seed 0, 8 windows: no Test "
                                                        "JSON reachable)")
    assert result.description["dtype"] == "uint16"
    litert = exported_model.load_exported(os.path.join(out_dir, "DUMMY.tflite"))
    windows = np.full((2, 2, 8, 8, 1), 4095, np.uint16)
    above = np.full((2, 2, 8, 8, 1), 65535, np.uint16)
    # Values above 4095 read as 4095, as in training.
    np.testing.assert_array_equal(litert.predict(above), litert.predict(windows))
    np.testing.assert_allclose(litert.predict(windows),
                               np.asarray(model(np.ones((2, 2, 8, 8, 1), np.float32))),
                               atol=1e-4)


def _random_windows(shape, count=4, seed=0):
    return np.random.default_rng(seed).random((count,) + shape).astype(np.float32)


@pytest.mark.parametrize("name,window_shape", [("ConvNet3D", (4, 16, 16, 1)),
                                               ("LRCN", (3, 43, 43, 1))])
def test_rebuilt_models_give_the_original_outputs(name, window_shape):
    model = models.build_model(name, *window_shape[:2], window_shape[3], 4)
    rebuilt, replaced = rebuild.rebuild_for_litert(model)
    types = {type(layer).__name__ for layer in rebuilt.layers}
    if name == "ConvNet3D":
        assert replaced == tuple(layer.name for layer in model.layers
                                 if type(layer).__name__ in ("Conv3D", "MaxPooling3D"))
        assert not types & {"Conv3D", "MaxPooling3D"}
    else:
        assert replaced == ("lstm1", "lstm2", "lstm3", "lstm4")
        assert all(rebuilt.get_layer(layer).unroll for layer in replaced)
        assert all(rebuilt.get_layer(layer).use_cudnn is False for layer in replaced)
    windows = _random_windows(window_shape)
    original = np.asarray(model(windows, training=False))
    assert np.ptp(original, axis=0).max() > 0   # windows give different outputs
    np.testing.assert_allclose(np.asarray(rebuilt(windows, training=False)), original,
                               rtol=0, atol=1e-6)


def _pool_and_lstm_model():
    """A small model of the layer types ConvNet3D and LRCN need rebuilt."""
    import keras
    inputs = keras.Input((3, 8, 8, 3))
    x = keras.layers.Conv3D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.MaxPooling3D((1, 2, 2), padding="same", name="pool")(x)
    x = keras.layers.Reshape((3, 4 * 4 * 4))(x)
    x = keras.layers.LSTM(5, return_sequences=True, name="lstm_a")(x)
    x = keras.layers.LSTM(4, name="lstm_b")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="DUMMY")


@pytest.mark.slow
def test_pooling_and_lstm_convert_with_builtin_ops_only_after_the_rebuild(tmp_path):
    from coreLib.data import manifest as manifest_lib
    model = _pool_and_lstm_model()
    manifest = manifest_lib.Manifest(("a", "b", "no-action"), 3, 8, 3, "color", "uint8",
                                     False, {}, "")
    original_dir = str(tmp_path / "original")
    saved_model.write_saved_model(model, manifest, original_dir)
    # As built, MaxPool3D has no builtin LiteRT kernel.
    with pytest.raises(ActrecogError, match="builtin ops only"):
        litert.convert_to_litert(original_dir, "serving_default", "float32")
    rebuilt, replaced = rebuild.rebuild_for_litert(model)
    assert replaced == ("conv", "pool", "lstm_a", "lstm_b")
    rebuilt_dir = str(tmp_path / "rebuilt")
    saved_model.write_saved_model(rebuilt, manifest, rebuilt_dir)
    content = litert.convert_to_litert(rebuilt_dir, "serving_default", "float32")
    ops = litert.litert_op_names(content)
    assert "MAX_POOL_2D" in ops and "CONV_2D" in ops
    assert not {"WHILE", "CONV_3D"} & set(ops)
    assert not [op for op in ops if op.startswith("CUSTOM")]
    windows = np.random.default_rng(5).integers(0, 256, (6, 3, 8, 8, 3)).astype(np.uint8)
    interpreter = exported_model.litert_interpreter(content, num_threads=1)
    runner = interpreter.get_signature_runner("serving_default")
    np.testing.assert_allclose(runner(window=windows)["probabilities"],
                               np.asarray(model(windows / np.float32(255))), atol=1e-4)


def test_float32_parity_miss_exits_1_and_writes_nothing(dataset, tmp_path, capsys,
                                                        monkeypatch):
    _, json_path, dataset_dir, weights = dataset
    # A tolerance no float computation meets: the real check must fail.
    monkeypatch.setattr(config_lib, "LITERT_FLOAT32_TOLERANCE", -1.0)
    out_dir = tmp_path / "out"
    code = run_tool("export", ["DUMMY", weights, str(out_dir), "--manifest", dataset_dir,
                                 "--formats", "float32", "--parity-windows", "3"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("export.py: parity failed: ")
    assert "litert_float32 differs" in err
    assert not os.path.exists(out_dir)   # a refusal creates nothing


def test_bad_input_exits_2_with_one_line_and_writes_nothing(dataset, tmp_path, capsys):
    root, json_path, dataset_dir, weights = dataset
    other_classes = str(tmp_path / "classes4.weights.h5")
    test_scoring.perfect_dummy(num_classes=4).save_weights(other_classes)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    lrcn_dir = tmp_path / "lrcn"
    lrcn_dir.mkdir()
    (lrcn_dir / "run_config.json").write_text(json.dumps({"model_name": "LRCN"}))
    (lrcn_dir / "DUMMY.weights.h5").write_bytes(open(weights, "rb").read())
    out = str(tmp_path / "out")
    truncated = tmp_path / "truncated" / "DUMMY.weights.h5"
    truncated.parent.mkdir()
    truncated.write_bytes(open(weights, "rb").read()[:200])
    other_set = tmp_path / "other_set"
    other_set.mkdir()
    (other_set / "run_config.json").write_text(json.dumps({
        "model_name": "DUMMY", "window_shape": [test_scoring.SEQ_LEN, test_scoring.IMAGE_DIM,
                                                test_scoring.IMAGE_DIM, 3],
        "classes": ["x", "y", "no-action"], "modality": "color", "dtype": "uint8"}))
    (other_set / "DUMMY.weights.h5").write_bytes(open(weights, "rb").read())
    not_export = tmp_path / "not_export"
    not_export.mkdir()
    (not_export / "notes.txt").write_text("mine")
    cases = [
        (["DUMMY", str(tmp_path / "missing.weights.h5"), out, "--manifest", dataset_dir],
         "missing.weights.h5: weights file not found"),
        (["DUMMY", str(truncated), out, "--manifest", dataset_dir], str(truncated)),
        (["DUMMY", weights, out, "--manifest", dataset_dir, "--parity-json",
          str(tmp_path / "none.json")], "none.json"),
        (["DUMMY", str(other_set / "DUMMY.weights.h5"), out, "--manifest", dataset_dir],
         f"classes {', '.join(test_scoring.CLASSES)} differ from the weights' "
         f"({other_set / 'run_config.json'}: x, y, no-action)"),
        (["DUMMY", weights, out, "--manifest", dataset_dir, "--formats", "int8"],
         "no Train or Eval windows to calibrate the int8 files; pass --calibration"),
        (["DUMMY", weights, str(not_export), "--manifest", dataset_dir],
         "holds files but no export.json"),
        (["DUMMY", weights, out, "--manifest", dataset_dir, "--formats", "float32,int4"],
         "unknown format 'int4'"),
        (["DUMMY", other_classes, out, "--manifest", dataset_dir], "4 classes"),
        (["DUMMY", str(lrcn_dir / "DUMMY.weights.h5"), out], "trained a LRCN model"),
        (["DUMMY", weights, out], "no run_config.json"),
        (["DUMMY", weights, str(a_file), "--manifest", dataset_dir], "a file, not a folder"),
        (["DUMMY", str(root / "x.tflite"), out, "--manifest", dataset_dir],
         "must end in .weights.h5"),
    ]
    for argv, message in cases:
        assert run_tool("export", argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (argv, err)
    assert not os.path.exists(out)   # a refusal creates nothing
    assert os.listdir(not_export) == ["notes.txt"]
    # train.py refuses an exported model as MODEL_DIR or DATASET_DIR.
    for argv in ([dataset_dir, "DUMMY", str(root / "DUMMY.tflite")],
                 [str(root / "exported" / "DUMMY.tflite"), "DUMMY", str(tmp_path / "m")]):
        assert run_tool("train", argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is an exported model" in err, err


def test_score_refuses_an_export_of_other_classes_or_a_stream_only_file(
        dummy_export, dataset, tmp_path, capsys):
    out_dir, _ = dummy_export
    _, json_path, _, _ = dataset
    other = tmp_path / "other"
    other.mkdir()
    description = json.loads(open(os.path.join(out_dir, "export.json")).read())
    description["classes"] = ["x", "y", "no-action"]
    (other / "export.json").write_text(json.dumps(description))
    (other / "DUMMY.tflite").write_bytes(open(os.path.join(out_dir, "DUMMY.tflite"),
                                              "rb").read())
    for path, message in ((str(other / "DUMMY.tflite"), "exported classes"),
                          (os.path.join(out_dir, "DUMMY_stream.tflite"), "only the stream")):
        assert run_tool("score", ["DUMMY", path, json_path]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    # Another MODEL_NAME is named as the command line's, not "the data's" (issue 21).
    litert = os.path.join(out_dir, "DUMMY.tflite")
    assert run_tool("score", ["LRCN", litert, json_path]) == 2
    assert capsys.readouterr().err == (f"score.py: error: {litert}: an export of DUMMY, "
                                       f"not of MODEL_NAME LRCN\n")


def _is_complete_export(out_dir: str) -> dict:
    """OUT_DIR holds exactly what its export.json lists, every file's sha256 as
    listed; returns the description."""
    description = json.loads(open(os.path.join(out_dir, "export.json")).read())
    assert sorted(os.listdir(out_dir)) == sorted(list(description["files"]) + ["export.json"])
    for name, entry in description["files"].items():
        path = os.path.join(out_dir, name)
        digest = (publish.folder_digest(path)[1] if os.path.isdir(path)
                  else storage.sha256_of(path))
        assert digest == entry["sha256"], name
    return description


def _export_killed_when(runner, out_dir, moment, weights, dataset_dir, formats):
    """Runs export.py and SIGKILLs it the moment ``moment()`` is true (watched in a
    tight loop that only yields the CPU); False when the export ended first."""
    child = runner.spawn("export.py", ["DUMMY", weights, str(out_dir), "--manifest",
                                       dataset_dir, "--formats", formats,
                                       "--parity-windows", "2"])
    return runner.kill_when(child, moment, poll_s=0)


@pytest.mark.slow
def test_a_kill_while_publishing_leaves_the_old_or_the_new_export(dataset, tmp_path,
                                                                  script_runner):
    _, json_path, dataset_dir, weights = dataset
    out_dir = tmp_path / "out"
    old = export_model.export(export_model.ExportConfig(
        "DUMMY", weights, str(out_dir), manifest_dir=dataset_dir,
        formats=("float32", "fp16"), parity_windows=2)).description
    old_json = storage.sha256_of(str(out_dir / "export.json"))
    staged = lambda: any(os.path.exists(os.path.join(tmp_path, name, "saved_model"))  # noqa
                         for name in os.listdir(tmp_path) if publish.STAGING_MARKER in name)
    # Killed while the new export is being built beside OUT_DIR.
    assert _export_killed_when(script_runner, out_dir, staged, weights, dataset_dir,
                               "saved_model,float32")
    assert _is_complete_export(str(out_dir)) == old
    # Killed the moment OUT_DIR's export.json is replaced: the whole new export,
    # without the old fp16 file it does not write.
    replaced = lambda: (os.path.exists(out_dir / "export.json")  # noqa: E731
                        and storage.sha256_of(str(out_dir / "export.json")) != old_json)
    _export_killed_when(script_runner, out_dir, replaced, weights, dataset_dir,
                        "saved_model,float32")
    new = _is_complete_export(str(out_dir))
    assert sorted(new["files"]) == ["DUMMY.tflite", "saved_model"]
    # Leftover staging folders beside OUT_DIR go with the next export.
    export_model.export(export_model.ExportConfig("DUMMY", weights, str(out_dir),
                                                  manifest_dir=dataset_dir,
                                                  formats=("float32",), parity_windows=2))
    assert sorted(os.listdir(tmp_path)) == ["out"]
    assert sorted(os.listdir(out_dir)) == ["DUMMY.tflite", "export.json"]


@pytest.mark.slow
def test_causal_mobilenet_exports_its_stream_step(tmp_path):
    from coreLib.data import manifest as manifest_lib
    from coreLib.models import streaming
    model = models.build_model(streaming.CAUSAL_MOBILENET_NAME, 4, 16, 3, 3)
    weights = str(tmp_path / "CausalMobileNet.weights.h5")
    model.save_weights(weights)
    classes = ["a", "b", manifest_lib.NO_ACTION]
    (tmp_path / "run_config.json").write_text(json.dumps({
        "model_name": "CausalMobileNet", "window_shape": [4, 16, 16, 3], "num_classes": 3,
        "classes": classes, "modality": "color", "dtype": "uint8"}))
    out_dir = str(tmp_path / "out")
    result = export_model.export(export_model.ExportConfig(
        "CausalMobileNet", weights, out_dir, formats=("saved_model", "float32"),
        parity_windows=4))
    assert sorted(os.listdir(out_dir)) == ["CausalMobileNet.tflite",
                                           "CausalMobileNet_stream.tflite", "export.json",
                                           "saved_model"]
    stream = result.description["stream"]
    specs = streaming.stream_state_specs(model)
    assert stream["mode"] == "CausalMobileNet"
    assert stream["state_names"] == list(specs)
    assert stream["state_shapes"] == [list(spec.shape) for spec in specs.values()]
    for name in ("stream_saved_model", "stream_litert"):
        assert result.description["parity"][name]["passed"] is True
    for name in ("CausalMobileNet.tflite", "CausalMobileNet_stream.tflite"):
        assert not [op for op in result.description["files"][name]["ops"]
                    if op.startswith("CUSTOM")]
    # Frame by frame through the LiteRT stream file = the window model after L frames.
    windows = np.random.default_rng(6).integers(0, 256, (2, 4, 16, 16, 3)).astype(np.uint8)
    runner = exported_model.load_exported(os.path.join(out_dir,
                                                       "CausalMobileNet_stream.tflite"))
    states = runner.initial_state(2)
    for offset in range(4):
        probabilities, states = runner.stream_step(windows[:, offset], states)
    np.testing.assert_allclose(probabilities,
                               np.asarray(model(windows / np.float32(255), training=False)),
                               atol=1e-4)
    detect_runs_every_exported_form(tmp_path, weights, out_dir)


def detect_runs_every_exported_form(tmp_path, weights, out_dir):
    """detect.py on the export's SavedModel (OUT_DIR), window .tflite and stream
    .tflite gives the Keras weights' probabilities, online and offline."""
    import test_detection
    from coreLib.detection import config as detect_config, driver, sources
    from coreLib.inference import model_spec, runners

    folder = str(tmp_path / "sequence")
    test_detection.write_frames(folder, (("red", 5), ("green", 4), ("no-action", 3)))

    def probabilities(model_path, mode, online_runner="stream"):
        config = detect_config.DetectConfig("CausalMobileNet", model_path, folder, mode=mode,
                                            progress=False, batch_size=4, delay=0,
                                            online_runner=online_runner)
        manifest = model_spec.resolve_model_spec(model_path)
        assert manifest.window_shape == (4, 16, 16, 3) and manifest.modality == "color"
        model, kind, runner = runners.load_runner(config.model_name, config.model_path,
                                                  manifest, mode, config.online_runner)
        sequence = sources.discover_sources(folder, manifest)[0]
        result = driver.detect_sequence(sequence, manifest, kind, runner, mode, config)
        assert result.decoded_frames == 12
        return kind, result.probabilities

    litert_window = os.path.join(out_dir, "CausalMobileNet.tflite")
    litert_stream = os.path.join(out_dir, "CausalMobileNet_stream.tflite")
    for mode, forms in (("online", {out_dir: "stream", litert_stream: "stream",
                                    litert_window: "window"}),
                        ("offline", {out_dir: "window", litert_window: "window"})):
        kind, reference = probabilities(weights, mode)
        assert kind == ("stream" if mode == "online" else "window")
        for path, wanted_kind in forms.items():
            kind, found = probabilities(path, mode)
            assert kind == wanted_kind
            if mode == "offline" or path != litert_window:
                np.testing.assert_allclose(found, reference, atol=1e-4)
    # The weights' window runner online: the Keras model on the window ending at
    # each frame (no state).
    keras_window = probabilities(weights, "online", online_runner="window")
    assert keras_window[0] == "window"
    # The window .tflite online: the same windows.
    np.testing.assert_allclose(probabilities(litert_window, "online")[1], keras_window[1],
                               atol=1e-4)
    # --online-runner window: the export's window model, as the weights' window runner.
    for path in (out_dir, litert_window):
        kind, found = probabilities(path, "online", online_runner="window")
        assert kind == "window"
        np.testing.assert_allclose(found, keras_window[1], atol=1e-4)
    with pytest.raises(ActrecogError, match="holds only the stream step; offline mode"):
        probabilities(litert_stream, "offline")
    with pytest.raises(ActrecogError, match="holds only the stream step; --online-runner "
                                            "window needs the window model"):
        probabilities(litert_stream, "online", online_runner="window")
    wrong_name = detect_config.DetectConfig("DUMMY", out_dir, folder, mode="online",
                                            progress=False)
    with pytest.raises(ActrecogError,
                       match="an export of CausalMobileNet, not of MODEL_NAME DUMMY"):
        runners.load_runner(wrong_name.model_name, wrong_name.model_path,
                            model_spec.resolve_model_spec(out_dir), "online")
