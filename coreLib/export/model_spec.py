"""What the exported model takes (classes, window, modality, pixel dtype) and where
its DataSet is: from ``--manifest`` or MODEL_PATH's ``run_config.json``."""

import os
from typing import Optional, Tuple

from coreLib import storage
from coreLib.data import frames, manifest as manifest_lib
from coreLib.errors import ActrecogError
from coreLib.inference import model_loading

RUN_CONFIG_NAME = manifest_lib.RUN_CONFIG_NAME
# train.py's run_config.json key naming the DataSet it trained on.
RUN_DATASET_KEY = "dataset_dir"


def read_run_config(model_path: str) -> Tuple[str, Optional[dict]]:
    """``(path, content or None)`` of ``run_config.json`` in MODEL_PATH's folder."""
    path = storage.join(os.path.dirname(model_path) or ".", RUN_CONFIG_NAME)
    return path, (storage.read_json(path, "run configuration")
                  if storage.exists(path) else None)


def check_model_path(model_path: str) -> None:
    """The weights file must exist (named in the message, before anything else).

    Raises:
        ActrecogError: MODEL_PATH missing or a folder.
    """
    if not model_path.endswith(model_loading.WEIGHTS_SUFFIXES + (model_loading.FULL_MODEL_SUFFIX,)):
        raise ActrecogError(f"{model_path}: MODEL_PATH must end in .weights.h5 or .keras "
                            f"(train.py's weights or a full Keras model)")
    if not storage.exists(model_path):
        raise ActrecogError(f"{model_path}: weights file not found")
    if storage.isdir(model_path):
        raise ActrecogError(f"{model_path}: is a folder, not a weights file "
                            f"(<model>.weights.h5 or .keras)")


def _check_agrees(run_config_path: str, run_config: dict, manifest_dir: str,
                  manifest: manifest_lib.Manifest) -> None:
    if list(run_config.get("classes", ())) != list(manifest.classes):
        raise ActrecogError(
            f"{manifest_lib.manifest_path(manifest_dir)}: classes "
            f"{', '.join(manifest.classes)} differ from the weights' "
            f"({run_config_path}: {', '.join(run_config.get('classes', ()))})")
    if manifest_lib.frame_fields(run_config)["frames"] != manifest.frames:
        raise ActrecogError(
            f"{manifest_lib.manifest_path(manifest_dir)}: {manifest.frames} frames, the "
            f"weights' {manifest_lib.frame_fields(run_config)['frames']} ({run_config_path})")
    if list(run_config.get("window_shape", ())) != list(manifest.window_shape):
        raise ActrecogError(
            f"{manifest_lib.manifest_path(manifest_dir)}: window "
            f"{list(manifest.window_shape)} differs from the weights' "
            f"{run_config.get('window_shape')} ({run_config_path})")


def window_description(model_name: str, model_path: str,
                       manifest_dir: Optional[str]) -> manifest_lib.Manifest:
    """Classes, window shape, modality and pixel dtype the model was trained for.

    From ``--manifest`` when given, else from ``run_config.json`` in MODEL_PATH's
    folder (train.py's MODEL_DIR). Either way a run_config.json there must name
    this model and agree with the manifest.

    Returns:
        A Manifest without splits when it came from ``run_config.json``.

    Raises:
        ActrecogError: neither source, another model, or the two disagree.
    """
    run_config_path, run_config = read_run_config(model_path)
    if run_config is not None and run_config.get("model_name") != model_name:
        raise ActrecogError(f"{run_config_path}: trained a {run_config.get('model_name')} "
                            f"model, not {model_name}")
    if manifest_dir:
        manifest = manifest_lib.load_manifest(manifest_dir)
        if run_config is not None:
            _check_agrees(run_config_path, run_config, manifest_dir, manifest)
        return manifest
    if run_config is None:
        raise ActrecogError(f"{model_path}: no {RUN_CONFIG_NAME} in the weights' folder to "
                            f"say what they were trained on; pass --manifest DATASET_DIR")
    try:
        seq_len, image_dim, _, channels = (int(size) for size in run_config["window_shape"])
        classes = tuple(run_config["classes"])
        modality = run_config.get("modality")
        if modality is None and channels == 3:
            modality = "color"   # the only 3-channel modality
        if modality is None:
            raise ActrecogError(f"{run_config_path}: does not say which 1-channel modality "
                                f"(depth or confi) was trained; pass --manifest DATASET_DIR")
        dtype = run_config.get("dtype") or frames.modality_spec(modality).dtype
        return manifest_lib.Manifest(classes, seq_len, image_dim, channels, modality, dtype,
                                     False, {}, source="",
                                     **manifest_lib.frame_fields(run_config))
    except (KeyError, TypeError, ValueError) as error:
        raise ActrecogError(f"{run_config_path}: not a train.py run configuration "
                            f"({error})") from None


def reachable_dataset(model_path: str, manifest_dir: Optional[str]
                      ) -> Tuple[Optional[str], Optional[manifest_lib.Manifest]]:
    """The DataSet the model was trained on: ``--manifest`` when given, else the
    run config's ``dataset_dir`` when it still holds a ``dataset.json``.

    Returns:
        ``(DataSet folder, its manifest)`` or ``(None, None)``.
    """
    if manifest_dir:
        return manifest_dir, manifest_lib.load_manifest(manifest_dir)
    _, run_config = read_run_config(model_path)
    folder = (run_config or {}).get(RUN_DATASET_KEY)
    if folder and storage.exists(manifest_lib.manifest_path(folder)):
        return folder, manifest_lib.load_manifest(folder)
    return None, None
