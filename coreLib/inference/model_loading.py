"""Building a model for a DataSet's windows and loading trained weights into it.

``MODEL_PATH`` is a ``.weights.h5`` from train.py or a full ``.keras`` model, local or
a ``gs://`` URI. The weights file's layers and shapes are compared with the model
before loading, so a mismatch is one line naming the layer instead of Keras' error.
"""

import os
import tempfile
import warnings
from dataclasses import replace
from typing import Dict, List, Optional, Tuple

from coreLib import models, storage
from coreLib.data import manifest as manifest_lib
from coreLib.errors import ActrecogError
from coreLib.preprocessing import legacy_records

WEIGHTS_SUFFIXES = (".weights.h5", ".h5")
FULL_MODEL_SUFFIX = ".keras"


def _h5_layer_shapes(path: str) -> Tuple[Optional[str], Dict[str, List[tuple]]]:
    """Model name and per-layer variable shapes stored in a Keras 3 weights file."""
    import h5py  # a Keras dependency; only needed here

    shapes: Dict[str, List[tuple]] = {}
    try:
        with h5py.File(path, "r") as handle:
            if "layers" not in handle:
                return None, {}
            saved_name = handle["vars"].attrs.get("name") if "vars" in handle else None
            for group in handle["layers"].values():
                if "vars" not in group:
                    continue
                layer_name = group["vars"].attrs.get("name", "")
                found: List[tuple] = []

                def collect(_, item, found=found):
                    if isinstance(item, h5py.Dataset):
                        found.append(tuple(item.shape))
                group.visititems(collect)
                shapes[str(layer_name)] = sorted(found)
    except OSError as error:
        raise ActrecogError(f"{path}: not a Keras weights file ({error})") from None
    return (str(saved_name) if saved_name is not None else None), shapes


def _model_layer_shapes(model) -> Dict[str, List[tuple]]:
    return {layer.name: sorted(tuple(weight.shape) for weight in layer.weights)
            for layer in model.layers}


def check_weights_match(model, weights_path: str, local_path: str, model_name: str,
                        manifest: manifest_lib.Manifest) -> None:
    """Compares a weights file's layers and shapes with the model before loading.

    Args:
        model: the model built from the manifest's window shape and classes.
        weights_path: the name to report.
        local_path: a local copy of the file.
        model_name: the requested model name.
        manifest: gives the window shape and class count.

    Raises:
        ActrecogError: weights of another model, for another class count, or for
            another input shape (each said so, with the layer that differs).
    """
    saved_name, saved = _h5_layer_shapes(local_path)
    if saved_name and saved_name != model_name:
        raise ActrecogError(f"{weights_path}: weights of a {saved_name} model, not "
                            f"{model_name}")
    if not saved:
        return  # not a Keras 3 layout; load_weights decides
    expected = _model_layer_shapes(model)
    if set(saved) != set(expected):
        unknown = sorted(set(saved) ^ set(expected))[:3]
        raise ActrecogError(f"{weights_path}: weights of another model than "
                            f"{model_name} (layers {', '.join(unknown)} differ)")
    # The output layer's bias has one value per class.
    biases = [shape[0] for shape in saved.get(models.OUTPUT_LAYER_NAME, []) if len(shape) == 1]
    if biases and biases[0] != manifest.num_classes:
        saved_classes = biases[0]
        raise ActrecogError(f"{weights_path}: weights for {saved_classes} classes, the "
                            f"manifest has {manifest.num_classes}")
    for layer_name, shapes in expected.items():
        if saved[layer_name] != shapes:
            raise ActrecogError(
                f"{weights_path}: weights for another input shape than the manifest's "
                f"{manifest.window_shape} (layer {layer_name} holds "
                f"{saved[layer_name]}, expected {shapes})")


def load_model(model_name: str, model_path: str, manifest: manifest_lib.Manifest):
    """Builds ``model_name`` for the manifest's windows and loads ``model_path``.

    Args:
        model_name: ``ConvNet3D``, ``LRCN`` or ``DUMMY``.
        model_path: ``.weights.h5`` (train.py) or full ``.keras`` model, local or URI.
        manifest: window shape ``(L, D, D, C)`` and class count.

    Returns:
        A ``keras.Model``: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32.

    Raises:
        ActrecogError: unknown model name, missing file, weights that do not fit.
    """

    import keras

    if model_path.endswith(FULL_MODEL_SUFFIX):
        kind = "model file"
    elif model_path.endswith(WEIGHTS_SUFFIXES):
        kind = "weights file"
    else:
        raise ActrecogError(f"{model_path}: MODEL_PATH must end in .weights.h5 or .keras, "
                            f"or be an export.py model (.tflite, SavedModel folder)")
    models.get_model_builder(model_name)  # unknown name before any file work
    if not storage.exists(model_path):
        raise ActrecogError(f"{model_path}: {kind} not found")
    with tempfile.TemporaryDirectory() as local_dir:
        local_path = model_path
        if storage.is_remote(model_path):
            local_path = os.path.join(local_dir, os.path.basename(model_path))
            storage.copy_file(model_path, local_path)
        with warnings.catch_warnings():
            # Keras warns per layer before raising; the raise is reported instead.
            warnings.simplefilter("ignore")
            if kind == "model file":
                return _load_full_model(keras, model_name, model_path, local_path, manifest)
            model = models.build_model(model_name, manifest.seq_len, manifest.image_dim,
                                       manifest.channels, manifest.num_classes)
            check_weights_match(model, model_path, local_path, model_name, manifest)
            try:
                model.load_weights(local_path)
            except (ValueError, OSError, KeyError) as error:
                first_line = str(error).strip().splitlines()[0] if str(error) else ""
                raise ActrecogError(f"{model_path}: weights do not fit {model_name} at "
                                    f"{manifest.window_shape} with {manifest.num_classes} "
                                    f"classes ({first_line})") from None
    return model


def _load_full_model(keras, model_name: str, model_path: str, local_path: str,
                     manifest: manifest_lib.Manifest):
    try:
        model = keras.saving.load_model(local_path, compile=False)
    except Exception as error:  # Keras raises many types for a bad archive
        first_line = str(error).strip().splitlines()[0] if str(error) else type(error).__name__
        raise ActrecogError(
            f"{model_path}: not a loadable Keras model ({first_line})") from None
    if model.name != model_name:
        raise ActrecogError(f"{model_path}: holds a {model.name} model, not {model_name}")
    input_shape = tuple(model.input_shape[1:])
    if input_shape != manifest.window_shape:
        raise ActrecogError(f"{model_path}: model input shape {input_shape} differs from "
                            f"the manifest's {manifest.window_shape}")
    if model.output_shape[-1] != manifest.num_classes:
        raise ActrecogError(f"{model_path}: model has {model.output_shape[-1]} classes, the "
                            f"manifest has {manifest.num_classes}")
    return model


def _check_same_classes(classes, config_path: str, manifest: manifest_lib.Manifest,
                        model_path: str) -> None:
    """Weights trained on other classes than the DataSet's are refused by name:
    the weights' run config is what differs, not the Test JSON."""
    if set(classes) == set(manifest.classes):
        return
    raise ActrecogError(
        f"{model_path}: weights of {len(classes)} classes ({', '.join(classes)}, from "
        f"{config_path}), the DataSet's {manifest_lib.MANIFEST_NAME} has "
        f"{manifest.num_classes} ({', '.join(manifest.classes)}): score with weights "
        f"trained on this DataSet")


def manifest_for_model(dataset_dir: str, model_path: str) -> manifest_lib.Manifest:
    """What score.py scores with: the DataSet's manifest, in the model's class order.

    The model's ``run_config.json`` (train.py writes it beside the weights) holds
    the class order it was trained with; the Test JSON names classes, so they are
    mapped to the model's indices by name. A 1.0.4 DataSet has no manifest: the
    window shape then comes from the run config too, and the frames are read as
    the colour frames 1.0.4 used.

    Args:
        dataset_dir: the folder that may hold ``dataset.json``.
        model_path: the weights (their folder may hold ``run_config.json``).

    Raises:
        ActrecogError: neither a manifest nor a run config, or a run config that
            is not one (naming the file).
    """

    config_path = storage.join(os.path.dirname(model_path) or ".", manifest_lib.RUN_CONFIG_NAME)
    run_config = (storage.read_json(config_path, "run configuration")
                  if storage.exists(config_path) else None)
    has_manifest = storage.exists(manifest_lib.manifest_path(dataset_dir))
    if run_config is None:
        if not has_manifest:
            raise ActrecogError(f"{dataset_dir}: no {manifest_lib.MANIFEST_NAME} manifest "
                                f"(run main.py first), and no {manifest_lib.RUN_CONFIG_NAME} "
                                f"beside {model_path} to take the classes from")
        return manifest_lib.load_manifest(dataset_dir)
    try:
        classes = tuple(run_config["classes"])
        window_shape = tuple(int(size) for size in run_config["window_shape"])
        if has_manifest:
            found = manifest_lib.load_manifest(dataset_dir)
            trained = manifest_lib.frame_fields(run_config)["frames"]
            if trained != found.frames:
                raise ActrecogError(f"{config_path}: the model was trained on {trained} "
                                    f"frames, {manifest_lib.manifest_path(dataset_dir)} "
                                    f"holds {found.frames} frames")
            _check_same_classes(classes, config_path, found, model_path)
            return replace(found, classes=classes)
        if len(window_shape) != 4 or window_shape[3] != legacy_records.LEGACY_CHANNELS:
            raise ActrecogError(f"{config_path}: a model of window {window_shape}; without "
                                f"a {manifest_lib.MANIFEST_NAME} only colour (C = 3) "
                                f"models can be scored")
        # Frames are read from the PNGs: uint8 colour, scaled by 255 as 1.0.4 did.
        return manifest_lib.Manifest(classes=classes, seq_len=window_shape[0],
                                     image_dim=window_shape[1], channels=window_shape[3],
                                     modality=legacy_records.LEGACY_MODALITY, dtype="uint8",
                                     offline_augment=False, splits={},
                                     source=config_path)
    except (KeyError, TypeError, ValueError) as error:
        raise ActrecogError(f"{config_path}: not a train.py run configuration "
                            f"({error})") from None
