"""export.py: a trained model as a SavedModel and LiteRT files, checked against Keras.

    export.py MODEL_NAME MODEL_PATH OUT_DIR [--formats saved_model,float32,fp16,dynamic,int8]

Steps (one module each in this package):
  1. ``model_spec``: classes, window shape, modality and pixel dtype from
     MODEL_PATH's ``run_config.json`` or ``--manifest``, and the DataSet trained on.
  2. ``windows``: parity on the DataSet's Test windows (or ``--parity-json``;
     seeded random windows when none is reachable), int8 calibration on its
     Train (else Eval) windows, the drift check on TestDetection frames.
  3. ``rebuild``: layers without a builtin LiteRT kernel rebuilt (same weights,
     outputs within 1e-6); ``stream_modes``: the model's stream step and the
     int8 graph (CausalMobileNet's pooling without CUMSUM/SUM/DIV).
  4. ``saved_model``: ``serving_default`` (``window`` in the stored dtype, scaled
     inside) and ``stream_step``; ``litert``: float32 / fp16 / dynamic-range
     files, builtin ops only; ``int8``: full-integer window and stream files.
  5. ``parity``: SavedModel within 1e-5 and float32 LiteRT within 1e-4 of Keras
     (a miss: :class:`ParityError`, exit 1); quantised files by top-1 agreement
     and (int8, with labels) Test accuracy against their targets (below target:
     :class:`BelowTargetError`, exit 1, unless ``allow_below_target``).
  6. ``publish``: everything built beside OUT_DIR and swapped into its place
     with ``export.json``, so OUT_DIR is the old export or the new one.
"""

import contextlib
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from coreLib import storage
from coreLib.data import frames, manifest as manifest_lib
from coreLib.export import (config as config_lib, int8, litert, model_spec, parity,
                            publish, rebuild, saved_model, stream_modes, windows as windows_lib)
from coreLib.export.config import (BelowTargetError, ExportConfig, ExportResult,  # noqa: F401
                                   FORMAT_NAMES, LITERT_FORMATS, ParityError,
                                   litert_file_name, parse_formats)
from coreLib.inference import exported_model, model_loading
from coreLib.preprocessing import augment, records

tf = storage.tf

Log = Callable[[str], None]
window_description = model_spec.window_description   # the name other stages call


class _Build:
    """What one export has built so far (the staging folder's content)."""

    def __init__(self, config: ExportConfig, manifest: manifest_lib.Manifest, staging: str,
                 scratch: str, log: Log):
        self.config, self.manifest, self.log = config, manifest, log
        self.staging, self.scratch = staging, scratch
        self.ops: Dict[str, List[str]] = {}
        self.parity: dict = {}
        self.int8: dict = {}
        self.runners: Dict[str, exported_model.ExportedModel] = {}
        self.info: Optional[exported_model.ExportInfo] = None

    def write(self, file_name: str, content: bytes) -> str:
        path = storage.join(self.staging, file_name)
        storage.write_bytes_atomic(path, content)
        return path


def _transform_windows(windows: np.ndarray, rotations: np.ndarray,
                       flips: np.ndarray) -> np.ndarray:
    """The rotations and flips a window JSON asks for, as score.py applies them:
    ``(B, L, D, D, C)`` stored dtype in and out (``windows.WindowTransform``)."""
    return augment.transform_windows(windows, rotations, flips).numpy()


def _saved_model(build: _Build, rebuilt, stream_mode, windows, reference) -> None:
    config, manifest = build.config, build.manifest
    inside = config_lib.SAVED_MODEL_FORMAT in config.formats
    folder = storage.join(build.staging if inside else build.scratch,
                          exported_model.SAVED_MODEL_FOLDER)
    build.log("writing the SavedModel")
    saved_model.write_checked_saved_model(config.model_path, rebuilt, manifest, folder,
                                          stream_mode)
    build.saved_model_dir = folder
    build.info = exported_model.ExportInfo(
        config.model_name, manifest.classes, manifest.window_shape, manifest.modality,
        manifest.dtype, stream_mode.state_shapes if stream_mode else (), {})
    runner = exported_model.SavedModelRunner(folder, build.info)
    build.runners[config_lib.SAVED_MODEL_FORMAT] = runner
    build.parity[config_lib.SAVED_MODEL_FORMAT] = parity.compare(
        reference, parity.exported_probabilities(runner, windows.pixels, config.batch_size),
        config_lib.SAVED_MODEL_TOLERANCE, labels=windows.labels)


def _float_litert(build: _Build, has_stream: bool, windows, reference) -> None:
    """float32 / fp16 / dynamic files from the SavedModel, with their parity."""
    config = build.config
    jobs = [(name, False) for name in LITERT_FORMATS
            if name in config.formats and name != config_lib.INT8_FORMAT]
    if has_stream and config_lib.FLOAT32_FORMAT in config.formats:
        jobs.append((config_lib.FLOAT32_FORMAT, True))
    for format_name, stream in jobs:
        signature = (exported_model.STREAM_SIGNATURE if stream
                     else exported_model.SERVING_SIGNATURE)
        build.log(f"converting {signature} to LiteRT {format_name}")
        content = litert.convert_to_litert(build.saved_model_dir, signature, format_name)
        file_name = litert_file_name(config.model_name, format_name, stream)
        build.ops[file_name] = litert.litert_op_names(content)
        litert.check_builtin_only(build.ops[file_name], file_name)
        runner = exported_model.LiteRTRunner(build.write(file_name, content), build.info)
        build.runners[file_name] = runner
        if stream:
            continue
        tolerance = (config_lib.LITERT_FLOAT32_TOLERANCE
                     if format_name == config_lib.FLOAT32_FORMAT else None)
        build.parity[config_lib.parity_key(format_name)] = parity.compare(
            reference, parity.exported_probabilities(runner, windows.pixels,
                                                     config.batch_size),
            tolerance, format_name, windows.labels)


def _stream_parity(build: _Build, stream_mode, windows) -> dict:
    """The stream step's description; its parity (SavedModel, float32 LiteRT vs
    Keras fed the same frames) goes to ``build.parity``."""
    config, manifest = build.config, build.manifest

    def keras_step(frame, states):
        probabilities, new_states = stream_mode.step(
            records.scale_pixels(frame, manifest.dtype), [tf.constant(s) for s in states])
        return np.asarray(probabilities), [np.asarray(state) for state in new_states]

    saved = build.runners[config_lib.SAVED_MODEL_FORMAT]
    zero = saved.initial_state(len(windows.pixels))
    reference = parity.stream_probabilities(keras_step, zero, windows.pixels)
    build.parity["stream_saved_model"] = parity.compare(
        reference, parity.stream_probabilities(saved.stream_step, zero, windows.pixels),
        config_lib.SAVED_MODEL_TOLERANCE)
    stream_file = litert_file_name(config.model_name, config_lib.FLOAT32_FORMAT, True)
    if stream_file in build.runners:
        runner = build.runners[stream_file]
        build.parity["stream_litert"] = parity.compare(
            reference, parity.stream_probabilities(runner.stream_step, zero, windows.pixels),
            config_lib.LITERT_FLOAT32_TOLERANCE)
    return _stream_description(stream_mode, manifest)


def _stream_description(stream_mode, manifest: manifest_lib.Manifest) -> dict:
    frame_spec = ["B"] + list(manifest.window_shape[1:]) + [manifest.dtype]
    state_specs = {exported_model.state_input_name(i): ["B"] + list(shape) + ["float32"]
                   for i, shape in enumerate(stream_mode.state_shapes)}
    outputs = {exported_model.PROBABILITIES_NAME: ["B", manifest.num_classes, "float32"]}
    outputs.update({exported_model.new_state_name(i): ["B"] + list(shape) + ["float32"]
                    for i, shape in enumerate(stream_mode.state_shapes)})
    return {"mode": stream_mode.name,
            "state_shapes": [list(shape) for shape in stream_mode.state_shapes],
            "state_names": list(stream_mode.state_names),
            "signature": {"inputs": {exported_model.FRAME_INPUT_NAME: frame_spec,
                                     **state_specs},
                          "outputs": outputs}}


def _int8_files(build: _Build, rebuilt, model, stream_mode, windows, calibration,
                reference, dataset) -> None:
    """The full-integer files, their checks, parity, Test accuracy and drift."""
    config, manifest = build.config, build.manifest
    graph = stream_modes.int8_graph(config.model_name, rebuilt, stream_mode)
    int8.check_graph_matches(graph, model, windows.pixels, manifest.dtype)
    files = int8.convert_int8(config, graph, manifest, calibration.pixels, build.scratch,
                              build.log)
    build.int8 = {"calibration": calibration.source, "graph_rewrites": list(graph.rewrites),
                  "files": {}}
    for file_name, (content, checks) in files.items():
        build.ops[file_name] = checks["ops"]
        runner = exported_model.LiteRTRunner(build.write(file_name, content), build.info)
        build.runners[file_name] = runner
        entry = {"tflm_missing_ops": checks["tflm_missing_ops"],
                 "arena_bytes": checks["arena_bytes"]}
        if runner.has_stream_step:
            zero = runner.initial_state(len(windows.pixels))
            found = parity.stream_probabilities(runner.stream_step, zero, windows.pixels)
            build.parity[config_lib.parity_key(config_lib.INT8_FORMAT, True)] = parity.compare(
                reference, found, None, config_lib.INT8_FORMAT, windows.labels)
            entry["states"] = int8.stream_state_description(runner, graph.stream_mode.state_names)
            window_file = litert_file_name(config.model_name, config_lib.INT8_FORMAT)
            window_runner = build.runners[window_file]
            window_found = parity.exported_probabilities(window_runner, windows.pixels,
                                                         config.batch_size)
            entry["top1_agreement_with_window_file"] = float(np.mean(
                window_found.argmax(axis=1) == found.argmax(axis=1)))
            entry["drift"] = _drift(build, runner, dataset)
        else:
            build.parity[config_lib.parity_key(config_lib.INT8_FORMAT)] = parity.compare(
                reference, parity.exported_probabilities(runner, windows.pixels,
                                                         config.batch_size),
                None, config_lib.INT8_FORMAT, windows.labels)
        build.int8["files"][file_name] = entry


def _drift(build: _Build, int8_stream, dataset) -> dict:
    config = build.config
    float_file = litert_file_name(config.model_name, config_lib.FLOAT32_FORMAT, True)
    float_stream = build.runners.get(float_file, build.runners[config_lib.SAVED_MODEL_FORMAT])
    stream, source = windows_lib.detection_stream(dataset, build.manifest, config.drift_frames)
    if stream is None:
        return {"frames": 0, "source": source, "passed": None}
    build.log(f"drift check: the int8 stream against the float32 stream over "
              f"{len(stream)} frames")
    return parity.drift(float_stream, int8_stream, stream, source)


def _below_target(build: _Build, num_windows: int) -> List[str]:
    """One line per quantised file below its targets."""
    lines = []
    for key, figures in build.parity.items():
        if isinstance(figures, dict) and "min_top1_agreement" in figures \
                and not figures["passed"]:
            accuracy = ("" if figures.get("accuracy") is None else
                        f", Test accuracy {100 * figures['accuracy']:.1f} % against "
                        f"{100 * figures['reference_accuracy']:.1f} % (at most "
                        f"{config_lib.MAX_INT8_ACCURACY_LOSS} point lower wanted)")
            lines.append(f"{key}: top-1 agreement {100 * figures['top1_agreement']:.1f} % on "
                         f"{num_windows} windows (>= "
                         f"{100 * figures['min_top1_agreement']:.0f} % wanted){accuracy}")
    for file_name, entry in build.int8.get("files", {}).items():
        if entry.get("drift", {}).get("passed") is False:
            drift = entry["drift"]
            lines.append(f"{file_name}: drifts: agreement with the float32 stream "
                         f"{100 * drift['last_agreement']:.1f} % over the last "
                         f"{drift['span']} of {drift['frames']} frames against "
                         f"{100 * drift['first_agreement']:.1f} % over the first")
    return lines


def _raise_on_parity_failure(config: ExportConfig, parity_figures: dict,
                             num_windows: int) -> None:
    """ParityError naming the first float32 format that missed its tolerance."""
    failed = [name for name in (config_lib.SAVED_MODEL_FORMAT, "litert_float32",
                                "stream_saved_model", "stream_litert")
              if name in parity_figures and not parity_figures[name]["passed"]]
    if failed:
        name = failed[0]
        raise ParityError(
            f"{config.model_path}: {name} differs from the Keras model by "
            f"{parity_figures[name]['max_abs_diff']:.3g} (tolerance "
            f"{parity_figures[name]['tolerance']}) on {num_windows} windows")


def _description(build: _Build, replaced, windows, stream, began: float) -> dict:
    """``export.json``: what the files hold and how they compare with Keras."""
    config, manifest = build.config, build.manifest
    description = {
        **manifest_lib.frame_json(manifest),
        "format_version": exported_model.EXPORT_FORMAT_VERSION,
        "model_name": config.model_name,
        "classes": list(manifest.classes),
        "num_classes": manifest.num_classes,
        "window_shape": list(manifest.window_shape),
        "modality": manifest.modality,
        "dtype": manifest.dtype,
        "pixel_scale": frames.MODEL_INPUT_SCALE[manifest.dtype],
        "source": {"model_path": storage.absolute(config.model_path),
                   "sha256": storage.sha256_of(config.model_path)},
        "rebuilt_layers": list(replaced),
        "signatures": {exported_model.SERVING_SIGNATURE: {
            "inputs": {exported_model.WINDOW_INPUT_NAME:
                       ["B"] + list(manifest.window_shape) + [manifest.dtype]},
            "outputs": {exported_model.PROBABILITIES_NAME:
                        ["B", manifest.num_classes, "float32"]}}},
        "files": publish.staged_entries(build.staging, build.ops),
        "parity": {"num_windows": int(len(windows.pixels)), "windows": windows.source,
                   **build.parity},
        "seconds": round(time.perf_counter() - began, 3),
    }
    if build.int8:
        description["int8"] = build.int8
    if stream:
        description["stream"] = stream
        description["signatures"][exported_model.STREAM_SIGNATURE] = stream["signature"]
    return description


def _build(build: _Build, model, rebuilt, replaced, stream_mode, windows, calibration,
           dataset, began: float) -> dict:
    """Writes every file into the staging folder; returns ``export.json``'s content."""
    config = build.config
    reference = build.reference
    _saved_model(build, rebuilt, stream_mode, windows, reference)
    _float_litert(build, stream_mode is not None, windows, reference)
    stream = _stream_parity(build, stream_mode, windows) if stream_mode else None
    _raise_on_parity_failure(config, build.parity, len(windows.pixels))
    if config_lib.INT8_FORMAT in config.formats:
        _int8_files(build, rebuilt, model, stream_mode, windows, calibration, reference,
                    dataset)
    build.parity["rebuilt_keras"] = build.rebuilt_figures
    return _description(build, replaced, windows, stream, began)


def export(config: ExportConfig, log: Log = lambda line: None) -> ExportResult:
    """Exports a trained model; see the module docstring.

    Returns:
        The ``export.json`` content, the paths written, the lines of files below
        target (published only with ``allow_below_target``).

    Raises:
        ActrecogError: bad input (nothing written).
        ParityError: a float32 format missed its tolerance (nothing written).
        BelowTargetError: a quantised file below target (nothing written).
    """
    began = time.perf_counter()
    model_spec.check_model_path(config.model_path)
    manifest = model_spec.window_description(config.model_name, config.model_path,
                                             config.manifest_dir)
    publish.check_out_dir(config.out_dir)
    dataset_dir, dataset = model_spec.reachable_dataset(config.model_path, config.manifest_dir)
    model = model_loading.load_model(config.model_name, config.model_path, manifest)
    windows = windows_lib.parity_windows(config, manifest, dataset_dir, dataset,
                                         _transform_windows)
    calibration = (windows_lib.calibration_windows(config, manifest, dataset_dir, dataset,
                                                   _transform_windows)
                   if config_lib.INT8_FORMAT in config.formats else None)
    reference = parity.keras_probabilities(model, windows.pixels, manifest.dtype,
                                           config.batch_size)
    rebuilt, replaced = rebuild.rebuild_for_litert(model)
    rebuilt_diff = float(np.max(np.abs(parity.keras_probabilities(
        rebuilt, windows.pixels, manifest.dtype, config.batch_size) - reference)))
    if rebuilt_diff > config_lib.REBUILT_TOLERANCE:
        raise ParityError(f"{config.model_path}: the model rebuilt for LiteRT differs from "
                          f"the Keras model by {rebuilt_diff:.3g} (> "
                          f"{config_lib.REBUILT_TOLERANCE})")
    stream_mode = stream_modes.find_stream_mode(config.model_name, rebuilt)
    if stream_mode is None and config.window_stream:
        stream_mode = stream_modes.window_buffer_stream_mode(rebuilt, manifest.window_shape)
    publish.recover(config.out_dir)
    staging = publish.staging_folder(config.out_dir)
    scratch = staging + ".work"
    try:
        storage.makedirs(staging)
        storage.makedirs(scratch)
        build = _Build(config, manifest, staging, scratch, log)
        build.reference = reference
        build.rebuilt_figures = {"max_abs_diff": rebuilt_diff,
                                 "tolerance": config_lib.REBUILT_TOLERANCE, "passed": True}
        description = _build(build, model, rebuilt, replaced, stream_mode, windows,
                             calibration, dataset, began)
        below = _below_target(build, len(windows.pixels))
        if below and not config.allow_below_target:
            raise BelowTargetError(below)
        publish.publish(config.out_dir, staging, description)
    finally:
        for path in (staging, scratch):
            with contextlib.suppress(Exception):
                publish.remove_path(path)
    written = tuple(storage.join(config.out_dir, name) for name in description["files"])
    return ExportResult(description, written + (
        storage.join(config.out_dir, exported_model.EXPORT_JSON_NAME),), tuple(below))


def summary_lines(result: ExportResult) -> List[str]:
    """What export.py prints: one line per file, the parity figures, the int8 checks."""
    description = result.description
    lines = [f"{name}: {entry['bytes']} bytes" for name, entry in description["files"].items()]
    figures_all = description["parity"]
    lines.append(f"parity on {figures_all['num_windows']} windows ({figures_all['windows']}):")
    for name, figures in figures_all.items():
        if not isinstance(figures, dict):
            continue
        verdict = "ok" if figures["passed"] else "BELOW TARGET"
        agreement = (f", top-1 agreement {figures['top1_agreement'] * 100:.1f}%"
                     if "top1_agreement" in figures else "")
        accuracy = (f", Test accuracy {100 * figures['accuracy']:.1f}% (Keras float32 "
                    f"{100 * figures['reference_accuracy']:.1f}%)"
                    if figures.get("accuracy") is not None else "")
        lines.append(f"  {name}: max |diff| {figures['max_abs_diff']:.3g}{agreement}"
                     f"{accuracy} [{verdict}]")
    lines += _int8_lines(description.get("int8", {}))
    lines.append(f"wrote {result.files[-1]}")
    return lines


def _int8_lines(int8_description: dict) -> List[str]:
    lines = []
    if int8_description:
        lines.append(f"int8 calibration: {int8_description['calibration']}")
    for name, entry in int8_description.get("files", {}).items():
        tflm = ("TFLM has every op" if not entry["tflm_missing_ops"] else
                f"TFLM lacks {', '.join(entry['tflm_missing_ops'])}")
        line = f"  {name}: full integer, planned arena {entry['arena_bytes']} bytes, {tflm}"
        if "top1_agreement_with_window_file" in entry:
            line += (f", agrees with the int8 window file on "
                     f"{100 * entry['top1_agreement_with_window_file']:.1f}% of windows")
        drift = entry.get("drift")
        if drift and drift.get("passed") is not None:
            line += (f"; drift over {drift['frames']} frames: agreement with float32 "
                     f"{100 * drift['first_agreement']:.1f}% first {drift['span']}, "
                     f"{100 * drift['last_agreement']:.1f}% last {drift['span']}")
        elif drift:
            line += f"; no drift check ({drift['source']})"
        lines.append(line)
    return lines
