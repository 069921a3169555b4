"""What export.py writes beside an exported model: ``export.json`` and the names
of the exported signatures' inputs and outputs.

OUT_DIR of export.py::

    OUT_DIR/export.json
    OUT_DIR/saved_model/                signatures serving_default [, stream_step]
    OUT_DIR/<MODEL_NAME>.tflite         float32
    OUT_DIR/<MODEL_NAME>_fp16.tflite    float16 weights
    OUT_DIR/<MODEL_NAME>_dynamic.tflite dynamic-range int8 weights
    OUT_DIR/<MODEL_NAME>_stream.tflite  stream_step, float32 (models with a stream mode)
    OUT_DIR/<MODEL_NAME>_int8.tflite    full integer: int8 weights, activations, input, output
    OUT_DIR/<MODEL_NAME>_int8_stream.tflite  stream_step, full integer (int8 state too)
"""

import os
from dataclasses import dataclass
from typing import Tuple

from coreLib import storage
from coreLib.errors import ActrecogError

EXPORT_JSON_NAME = "export.json"
EXPORT_FORMAT_VERSION = 1
SAVED_MODEL_FOLDER = "saved_model"
TFLITE_SUFFIX = ".tflite"
SERVING_SIGNATURE = "serving_default"
STREAM_SIGNATURE = "stream_step"
WINDOW_INPUT_NAME = "window"
FRAME_INPUT_NAME = "frame"
PROBABILITIES_NAME = "probabilities"
STATE_INPUT_PREFIX = "state_"
NEW_STATE_PREFIX = "new_state_"


def state_input_name(index: int) -> str:
    """Name of the stream step's ``index``-th state input (``state_<i>``)."""
    return f"{STATE_INPUT_PREFIX}{index}"


def new_state_name(index: int) -> str:
    """Name of the stream step's ``index``-th state output (``new_state_<i>``)."""
    return f"{NEW_STATE_PREFIX}{index}"


@dataclass(frozen=True)
class ExportInfo:
    """What ``export.json`` says about the exported model.

    Attributes:
        model_name: ``ConvNet3D``, ``LRCN``, ``DUMMY`` (as trained).
        classes: class names in output order.
        window_shape: ``(L, D, D, C)``.
        modality: ``color``, ``depth`` or ``confi``.
        dtype: stored pixel dtype the models take, ``uint8`` or ``uint16``.
        state_shapes: per-example shapes of the stream step's float32 states
            (empty: no stream mode).
        content: the whole ``export.json``.
    """
    model_name: str
    classes: Tuple[str, ...]
    window_shape: Tuple[int, int, int, int]
    modality: str
    dtype: str
    state_shapes: Tuple[Tuple[int, ...], ...]
    content: dict

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def is_exported_path(path: str) -> bool:
    """True for a ``.tflite`` file, a SavedModel folder or an export.py OUT_DIR."""
    if path.endswith(TFLITE_SUFFIX):
        return True
    if path.endswith((".h5", ".keras")):
        return False
    return storage.isdir(path) and (
        storage.exists(storage.join(path, "saved_model.pb"))
        or storage.exists(storage.join(path, EXPORT_JSON_NAME)))


def export_json_path(path: str) -> str:
    """``export.json`` for a .tflite file, a SavedModel folder or OUT_DIR."""
    folder = os.path.dirname(path.rstrip("/")) if path.endswith(TFLITE_SUFFIX) else path
    candidates = [storage.join(folder, EXPORT_JSON_NAME)]
    if not path.endswith(TFLITE_SUFFIX):
        candidates.append(storage.join(os.path.dirname(path.rstrip("/")), EXPORT_JSON_NAME))
    for candidate in candidates:
        if storage.exists(candidate):
            return candidate
    raise ActrecogError(f"{path}: no {EXPORT_JSON_NAME} beside the exported model "
                        f"(write it with export.py)")


def read_export_info(path: str) -> ExportInfo:
    """Reads the ``export.json`` that describes an exported model.

    Args:
        path: the ``.tflite`` file, SavedModel folder or OUT_DIR.

    Raises:
        ActrecogError: no export.json, or one that is not export.py's.
    """
    json_path = export_json_path(path)
    content = storage.read_json(json_path, "export description")
    try:
        if content["format_version"] != EXPORT_FORMAT_VERSION:
            raise ValueError(f"format_version {content['format_version']}")
        window_shape = tuple(int(size) for size in content["window_shape"])
        if len(window_shape) != 4:
            raise ValueError(f"window_shape {window_shape}")
        if content["dtype"] not in ("uint8", "uint16"):
            raise ValueError(f"dtype {content['dtype']!r}")
        state_shapes = tuple(tuple(int(size) for size in shape)
                             for shape in content.get("stream", {}).get("state_shapes", ()))
        return ExportInfo(str(content["model_name"]), tuple(content["classes"]),
                          window_shape, str(content["modality"]), str(content["dtype"]),
                          state_shapes, content)
    except (KeyError, TypeError, ValueError) as error:
        raise ActrecogError(f"{json_path}: not an export.py description ({error})") from None
