"""What a model file takes: window shape, classes and modality, as a Manifest.

Read from a DataSet's ``dataset.json``, an export's ``export.json`` or the
``run_config.json`` train.py writes beside the weights.
"""

import os
from typing import Optional

from coreLib import storage
from coreLib.data import frames, hand_crop, manifest as manifest_lib
from coreLib.errors import ActrecogError
from coreLib.inference import exported_model

RUN_CONFIG_NAME = manifest_lib.RUN_CONFIG_NAME
# The frames a 3-channel model takes when nothing says (and what a video gives).
VIDEO_MODALITY = "color"


def _window_manifest(classes, window_shape, modality: str, where: str,
                     described: dict) -> manifest_lib.Manifest:
    """The window a model takes; ``described`` is its run_config.json or export.json
    (which may say the frames are hand-centred)."""
    spec = frames.modality_spec(modality)
    seq_len, image_dim, _, channels = window_shape
    fields = manifest_lib.frame_fields(described)
    try:
        hand_config = (hand_crop.HandCropConfig(**(fields["hand_crop"] or {}))
                       if fields["frames"] == hand_crop.HAND_FRAMES else None)
        # Hand-centred frames may carry path channels after the modality's own.
        expected = hand_crop.frame_channels(spec.channels, hand_config)
        if channels != expected:
            raise ActrecogError(f"{where}: the model takes {channels}-channel frames, "
                                f"{modality} frames have {expected}")
        return manifest_lib.Manifest(tuple(classes), seq_len, image_dim, channels,
                                     modality, spec.dtype, False, {}, "", **fields)
    except (TypeError, ValueError) as error:
        raise ActrecogError(f"{where}: {error}") from None


def resolve_model_spec(model_path: str, manifest_dir: Optional[str] = None,
                       modality: Optional[str] = None) -> manifest_lib.Manifest:
    """Window shape, classes and modality of a model, as a Manifest without splits.

    From ``manifest_dir/dataset.json`` when given (as score.py reads it), else
    from the ``export.json`` of an exported model (export.py), else from the
    ``run_config.json`` train.py wrote beside the weights; there the
    modality is its ``modality`` key, else ``modality``, else colour for a
    3-channel window.

    Raises:
        ActrecogError: no manifest and no run config, a run config without the
            needed keys, or a modality that does not fit the window's channels.
    """
    if manifest_dir:
        found = manifest_lib.load_manifest(manifest_dir)
        if modality and modality != found.modality:
            raise ActrecogError(f"--modality {modality}: the manifest's windows are "
                                f"{found.modality} frames")
        _check_manifest_fits_model(found, manifest_dir, model_path)
        return found
    return _model_own_spec(model_path, modality)


def check_model_path(model_path: str) -> None:
    """MODEL_PATH exists, and a folder is an export (named as such when it is not):
    detect.py says so before it looks for the files that describe the model.

    Raises:
        ActrecogError: naming MODEL_PATH.
    """
    if not storage.exists(model_path):
        what = ("weights file" if model_path.endswith(".h5") else "exported model"
                if model_path.endswith(exported_model.TFLITE_SUFFIX) else "model")
        raise ActrecogError(f"{model_path}: MODEL_PATH not found (no such {what})")
    if storage.isdir(model_path) and not exported_model.is_exported_path(model_path):
        raise ActrecogError(f"{model_path}: MODEL_PATH is a folder without "
                            f"{exported_model.EXPORT_JSON_NAME} or saved_model.pb - neither "
                            f"an export.py OUT_DIR nor a SavedModel")


def _check_manifest_fits_model(found: manifest_lib.Manifest, manifest_dir: str,
                               model_path: str) -> None:
    """--manifest must describe the windows and classes the model was made for,
    when the model says (its run_config.json or export.json): otherwise the
    label files would be blamed for the model's class list."""
    if exported_model.is_exported_path(model_path):
        described_by = exported_model.EXPORT_JSON_NAME
    else:
        described_by = storage.join(os.path.dirname(model_path) or ".", RUN_CONFIG_NAME)
        if not storage.exists(described_by):
            return
    own = _model_own_spec(model_path, found.modality)
    for what, wanted, given in (("classes", own.classes, found.classes),
                                ("window", own.window_shape, found.window_shape)):
        if tuple(wanted) != tuple(given):
            shown = (lambda value: ", ".join(value)) if what == "classes" else str
            raise ActrecogError(f"--manifest {manifest_dir}: its {what} ({shown(given)}) "
                                f"differ from the model's ({shown(wanted)}, from "
                                f"{described_by})")


def _model_own_spec(model_path: str, modality: Optional[str]) -> manifest_lib.Manifest:
    """The spec from the export's export.json or the weights' run_config.json."""
    if exported_model.is_exported_path(model_path):
        info = exported_model.read_export_info(model_path)
        if modality and modality != info.modality:
            raise ActrecogError(f"--modality {modality}: {model_path} was exported for "
                                f"{info.modality} frames")
        return _window_manifest(info.classes, info.window_shape, info.modality, model_path,
                                info.content)
    if storage.isdir(model_path):
        raise ActrecogError(f"{model_path}: a folder without {exported_model.EXPORT_JSON_NAME} "
                            f"or saved_model.pb: not an export.py OUT_DIR (export again) "
                            f"nor a weights file")
    folder = os.path.dirname(model_path) or "."
    path = storage.join(folder, RUN_CONFIG_NAME)
    if not storage.exists(path) and not storage.exists(model_path):
        raise ActrecogError(f"{model_path}: weights file not found")
    if not storage.exists(path):
        raise ActrecogError(f"{folder}: no {RUN_CONFIG_NAME} beside MODEL_PATH (train.py "
                            f"writes it); give the DataSet folder with --manifest")
    run_config = storage.read_json(path, "run configuration")
    shape, classes = run_config.get("window_shape"), run_config.get("classes")
    if (not isinstance(shape, list) or len(shape) != 4
            or not all(isinstance(value, int) and value > 0 for value in shape)
            or not isinstance(classes, list) or not classes
            or not all(isinstance(name, str) for name in classes)):
        raise ActrecogError(f"{path}: expected 'window_shape' [L, D, D, C] and a "
                            f"'classes' list")
    chosen = run_config.get("modality") or modality
    if chosen is None:
        if shape[3] != 3:
            raise ActrecogError(f"{path}: a {shape[3]}-channel model; say which frames "
                                f"it takes with --modality depth|confi or --manifest")
        chosen = VIDEO_MODALITY
    return _window_manifest(classes, shape, chosen, path, run_config)


def model_name_of(model_path: str) -> str:
    """The model's builder name, from ``export.json`` (an export) or the
    ``run_config.json`` beside the weights.

    Raises:
        ActrecogError: neither file, or one without ``model_name``.
    """
    if exported_model.is_exported_path(model_path):
        return exported_model.read_export_info(model_path).model_name
    path = storage.join(os.path.dirname(model_path) or ".", RUN_CONFIG_NAME)
    if not storage.exists(path):
        raise ActrecogError(f"{model_path}: no {RUN_CONFIG_NAME} beside it to name the "
                            f"model; give the model name")
    name = storage.read_json(path, "run configuration").get("model_name")
    if not isinstance(name, str) or not name:
        raise ActrecogError(f"{path}: no 'model_name'; give the model name")
    return name
