"""Running an exported model (export.py's SavedModel folder or a ``.tflite`` file).

Every exported model takes windows in the STORED pixel dtype and scales them
inside its graph exactly as training did, so a caller hands over what it read
from the frames and gets probabilities back:

    model = exported_model.load_exported(path)
    probabilities = model.predict(windows)   # (B, L, D, D, C) uint8/uint16 -> (B, K) float32

Classes, window shape, modality and pixel dtype come from the ``export.json``
beside the model (OUT_DIR of export.py; its files in
:mod:`coreLib.inference.export_info`).

A full-integer file takes int8 input: the runner scales the stored pixels as the
graph of the other files does and quantises them with the input's own scale and
zero point (from the file), dequantises the output, and keeps the stream state in
the file's int8 (requantised only where an output's scale differs from its input's).

MODEL_PATH may name the SavedModel folder, OUT_DIR itself (its ``saved_model/``)
or one ``.tflite`` file. LiteRT files run with the ``ai-edge-litert``
interpreter; the batch size is resized at run time.

Here: loading (:func:`load_exported`) and checking an exported model against the
data, and score.py's forward call. The runners are in
:mod:`coreLib.inference.exported_runner` (the interface, SavedModel) and
:mod:`coreLib.inference.litert_runner` (LiteRT, full-integer files).
"""

from typing import Dict, Optional, Sequence

from coreLib import storage
from coreLib.errors import ActrecogError
from coreLib.inference.export_info import (SAVED_MODEL_FOLDER, STREAM_SIGNATURE,
                                           TFLITE_SUFFIX, is_exported_path,
                                           read_export_info)
from coreLib.inference.exported_runner import ExportedModel, SavedModelRunner
from coreLib.inference.litert_runner import LiteRTRunner
from coreLib.preprocessing import augment

# The API of exported models in one place: the tools, tests and benches use these as
# ``exported_model.<name>``; each lives in the module of its concern.
from coreLib.inference.export_info import (  # noqa: F401,E402
    EXPORT_FORMAT_VERSION, EXPORT_JSON_NAME, FRAME_INPUT_NAME, NEW_STATE_PREFIX,
    PROBABILITIES_NAME, SERVING_SIGNATURE, STATE_INPUT_PREFIX, WINDOW_INPUT_NAME,
    ExportInfo, new_state_name, state_input_name)
from coreLib.inference.litert_runner import litert_interpreter  # noqa: F401,E402

tf = storage.tf


def load_exported(path: str, num_threads: Optional[int] = None) -> ExportedModel:
    """Loads a ``.tflite`` file, a SavedModel folder, or OUT_DIR's SavedModel.

    Args:
        path: local path or URI.
        num_threads: LiteRT CPU threads (None: every core this process may use).

    Raises:
        ActrecogError: missing file, no export.json, not a model.
    """
    if not storage.exists(path):
        raise ActrecogError(f"{path}: exported model not found")
    info = read_export_info(path)
    if path.endswith(TFLITE_SUFFIX):
        return LiteRTRunner(path, info, num_threads)
    folder = path
    if not storage.exists(storage.join(folder, "saved_model.pb")):
        folder = storage.join(path, SAVED_MODEL_FOLDER)
        if not storage.exists(storage.join(folder, "saved_model.pb")):
            raise ActrecogError(f"{path}: neither a SavedModel folder nor an export.py "
                                f"OUT_DIR holding {SAVED_MODEL_FOLDER}/")
    return SavedModelRunner(folder, info)


def check_matches(model: ExportedModel, model_name: str, classes: Sequence[str],
                  window_shape: Sequence[int], dtype: str) -> None:
    """Proves an exported model fits the data it is about to run on.

    Raises:
        ActrecogError: another model name, class list, window shape or pixel dtype
            (naming the first that differs).
    """
    info = model.info
    if info.model_name != model_name:
        raise ActrecogError(f"{model.path}: an export of {info.model_name}, not of "
                            f"MODEL_NAME {model_name}")
    wanted = {"classes": tuple(classes), "window_shape": tuple(window_shape), "dtype": dtype}
    found = {"classes": info.classes, "window_shape": info.window_shape, "dtype": info.dtype}
    for key, value in wanted.items():
        if found[key] != value:
            raise ActrecogError(f"{model.path}: exported {key} {found[key]!r} differs "
                                f"from the data's {value!r}")


def make_scoring_forward(model: ExportedModel, augmented: bool):
    """score.py's ``forward(pixels, rotations, flips)`` on an exported model.

    Rotations and flips (Test entries that ask for one) are applied by the same
    traced :func:`coreLib.preprocessing.augment.transform_windows` as for a Keras model, on the
    stored pixels, before the exported model scales them.

    Returns:
        ``forward(pixels (B, L, D, D, C) stored dtype, rotations (B,) int32,
        flips (B,) int32) -> (B, K) float32 tensor``.
    """
    pixel_spec = tf.TensorSpec((None,) + model.info.window_shape,
                               tf.dtypes.as_dtype(model.info.dtype))
    vector_spec = tf.TensorSpec((None,), tf.int32)
    transform = tf.function(augment.transform_windows,
                            input_signature=[pixel_spec, vector_spec, vector_spec])

    def forward(pixels, rotations, flips):
        if augmented:
            pixels = transform(pixels, rotations, flips).numpy()
        return tf.constant(model.predict(pixels))

    return forward


def scoring_forward(model_path: str, model_name: str, manifest, augmented: bool
                    ) -> Optional[Dict[str, object]]:
    """For score.py: the forward call of an exported MODEL_PATH, None for Keras files.

    Args:
        model_path: score.py's MODEL_PATH.
        model_name: score.py's MODEL_NAME.
        manifest: the dataset's manifest (classes, window shape, dtype).
        augmented: some Test window asks for a rotation or flip.

    Returns:
        None when MODEL_PATH is a Keras weights/model file; else
        ``{"model": ExportedModel, "forward": forward}``.

    Raises:
        ActrecogError: an exported model that does not fit the manifest.
    """
    if not is_exported_path(model_path):
        return None
    model = load_exported(model_path)
    if not model.has_window_model:
        raise ActrecogError(f"{model_path}: holds only the {STREAM_SIGNATURE}; score the "
                            f"window model (<MODEL_NAME>.tflite or the SavedModel)")
    check_matches(model, model_name, manifest.classes, manifest.window_shape,
                  manifest.dtype)
    return {"model": model, "forward": make_scoring_forward(model, augmented)}
