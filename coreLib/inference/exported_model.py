"""Running an exported model (export.py's SavedModel folder or a ``.tflite`` file).

Every exported model takes windows in the STORED pixel dtype and scales them
inside its graph exactly as training did, so a caller hands over what it read
from the frames and gets probabilities back:

    model = exported_model.load_exported(path)
    probabilities = model.predict(windows)   # (B, L, D, D, C) uint8/uint16 -> (B, K) float32

Classes, window shape, modality and pixel dtype come from the ``export.json``
beside the model (OUT_DIR of export.py):

    OUT_DIR/export.json
    OUT_DIR/saved_model/                signatures serving_default [, stream_step]
    OUT_DIR/<MODEL_NAME>.tflite         float32
    OUT_DIR/<MODEL_NAME>_fp16.tflite    float16 weights
    OUT_DIR/<MODEL_NAME>_dynamic.tflite dynamic-range int8 weights
    OUT_DIR/<MODEL_NAME>_stream.tflite  stream_step, float32 (models with a stream mode)
    OUT_DIR/<MODEL_NAME>_int8.tflite    full integer: int8 weights, activations, input, output
    OUT_DIR/<MODEL_NAME>_int8_stream.tflite  stream_step, full integer (int8 state too)

A full-integer file takes int8 input: the runner scales the stored pixels as the
graph of the other files does and quantises them with the input's own scale and
zero point (from the file), dequantises the output, and keeps the stream state in
the file's int8 (requantised only where an output's scale differs from its input's).

MODEL_PATH may name the SavedModel folder, OUT_DIR itself (its ``saved_model/``)
or one ``.tflite`` file. LiteRT files run with the ``ai-edge-litert``
interpreter; the batch size is resized at run time.
"""

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import frames as frames_lib
from coreLib.errors import ActrecogError
from coreLib.inference.quantization import dequantize, quantize

tf = storage.tf

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


def _export_json_path(path: str) -> str:
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
    json_path = _export_json_path(path)
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


@contextlib.contextmanager
def _quiet_stderr():
    """Points file descriptor 2 at /dev/null (the LiteRT runtime's C++ chatter)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class ExportedModel:
    """An exported model: stored-dtype windows in, probabilities out.

    Attributes:
        path: what was loaded.
        info: its :class:`ExportInfo`.
        kind: ``saved_model`` or ``litert``.
    """

    kind = ""

    def __init__(self, path: str, info: ExportInfo):
        self.path = path
        self.info = info

    @property
    def has_window_model(self) -> bool:
        """False for a stream-only file (``<MODEL_NAME>_stream.tflite``)."""
        return True

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities of a batch of windows.

        Args:
            windows: ``(B, L, D, D, C)`` in the stored dtype (``info.dtype``).

        Returns:
            ``(B, num_classes)`` float32.

        Raises:
            ActrecogError: windows of another shape or dtype.
        """
        windows = self._checked(windows, (None,) + self.info.window_shape, "windows")
        return np.asarray(self._run_windows(windows), np.float32)

    @property
    def has_stream_step(self) -> bool:
        return False

    def initial_state(self, batch_size: int = 1) -> Tuple[np.ndarray, ...]:
        """Zero states of the stream step for ``batch_size`` streams."""
        return tuple(np.zeros((batch_size,) + shape, np.float32)
                     for shape in self.info.state_shapes)

    def stream_step(self, frames_in: np.ndarray, states: Sequence[np.ndarray]
                    ) -> Tuple[np.ndarray, Tuple[np.ndarray, ...]]:
        """One stream step: a frame per stream and the states in.

        Args:
            frames_in: ``(B, D, D, C)`` in the stored dtype.
            states: as from :meth:`initial_state` or the previous step.

        Returns:
            ``(probabilities (B, K) float32, new states)``.

        Raises:
            ActrecogError: the model has no stream step, or bad shapes.
        """
        if not self.has_stream_step:
            raise ActrecogError(f"{self.path}: the exported model has no "
                                f"{STREAM_SIGNATURE} (no stream mode)")
        frames_in = self._checked(frames_in, (None,) + self.info.window_shape[1:], "frames")
        if getattr(self, "_state_dtypes", None) is None:
            self._state_dtypes = tuple(state.dtype for state in self.initial_state(1))
        states = tuple(np.asarray(state, dtype) for state, dtype in zip(states,
                                                                       self._state_dtypes))
        if len(states) != len(self.info.state_shapes):
            raise ActrecogError(f"{self.path}: {STREAM_SIGNATURE} takes "
                                f"{len(self.info.state_shapes)} states, got {len(states)}")
        return self._run_stream(frames_in, states)

    def _checked(self, array, shape, what: str) -> np.ndarray:
        array = np.asarray(array)
        if array.dtype != np.dtype(self.info.dtype):
            raise ActrecogError(f"{self.path}: {what} must be {self.info.dtype} (the stored "
                                f"pixels), got {array.dtype}")
        if array.ndim != len(shape) or any(
                want is not None and got != want for got, want in zip(array.shape, shape)):
            raise ActrecogError(f"{self.path}: {what} of shape {array.shape}, expected "
                                f"(B,) + {tuple(shape[1:])}")
        return np.ascontiguousarray(array)

    def _run_windows(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _run_stream(self, frames_in, states):
        raise NotImplementedError


class SavedModelRunner(ExportedModel):
    """A SavedModel folder run through ``tf.saved_model.load``."""

    kind = "saved_model"

    def __init__(self, path: str, info: ExportInfo):
        super().__init__(path, info)
        try:
            self._loaded = tf.saved_model.load(path)
        except (OSError, ValueError, tf.errors.OpError) as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ActrecogError(f"{path}: not a loadable SavedModel ({first_line})") from None
        signatures = self._loaded.signatures
        if SERVING_SIGNATURE not in signatures:
            raise ActrecogError(f"{path}: SavedModel without a {SERVING_SIGNATURE} signature")
        self._serve = signatures[SERVING_SIGNATURE]
        self._stream = signatures.get(STREAM_SIGNATURE)

    @property
    def has_stream_step(self) -> bool:
        return self._stream is not None and bool(self.info.state_shapes)

    def _run_windows(self, windows):
        return self._serve(**{WINDOW_INPUT_NAME: tf.constant(windows)})[
            PROBABILITIES_NAME].numpy()

    def _run_stream(self, frames_in, states):
        inputs = {FRAME_INPUT_NAME: tf.constant(frames_in)}
        inputs.update({state_input_name(i): tf.constant(state)
                       for i, state in enumerate(states)})
        outputs = self._stream(**inputs)
        return (outputs[PROBABILITIES_NAME].numpy(),
                tuple(outputs[new_state_name(i)].numpy() for i in range(len(states))))


def litert_interpreter(model_content: bytes = None, model_path: str = None,
                       num_threads: Optional[int] = None):
    """An ``ai_edge_litert`` interpreter for a ``.tflite`` (bytes or local path).

    Args:
        num_threads: CPU threads (None: the cores this process may use).
    """
    from ai_edge_litert.interpreter import Interpreter

    if num_threads is None:
        num_threads = len(os.sched_getaffinity(0))
    return Interpreter(model_path=model_path, model_content=model_content,
                       num_threads=num_threads)


class LiteRTRunner(ExportedModel):
    """A ``.tflite`` file run by the LiteRT interpreter (batch resized per call).

    A file holds one signature: ``serving_default`` (window models) or
    ``stream_step`` (``<MODEL_NAME>_stream.tflite``).
    """

    kind = "litert"

    def __init__(self, path: str, info: ExportInfo, num_threads: Optional[int] = None):
        super().__init__(path, info)
        try:
            self.interpreter = litert_interpreter(storage.read_bytes(path),
                                                  num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ActrecogError(f"{path}: not a runnable LiteRT model ({first_line})") from None
        signatures = self.interpreter.get_signature_list()
        self._serve = (self.interpreter.get_signature_runner(SERVING_SIGNATURE)
                       if SERVING_SIGNATURE in signatures else None)
        self._stream = (self.interpreter.get_signature_runner(STREAM_SIGNATURE)
                        if STREAM_SIGNATURE in signatures else None)
        if self._serve is None and self._stream is None:
            raise ActrecogError(f"{path}: LiteRT model without a {SERVING_SIGNATURE} or "
                                f"{STREAM_SIGNATURE} signature")
        runner = self._serve if self._serve is not None else self._stream
        self.input_details = runner.get_input_details()
        self.output_details = runner.get_output_details()
        pixel_input = WINDOW_INPUT_NAME if self._serve is not None else FRAME_INPUT_NAME
        self.integer = self.input_details[pixel_input]["dtype"] == np.int8
        # The runtime announces its CPU delegate on stderr at the first allocation;
        # allocating once here, quietly, keeps the scripts' stderr to one line.
        with _quiet_stderr():
            if self._serve is not None:
                self._run_windows(np.zeros((1,) + info.window_shape, info.dtype))
            elif info.state_shapes:
                self._run_stream(np.zeros((1,) + info.window_shape[1:], info.dtype),
                                 self.initial_state(1))

    @property
    def has_window_model(self) -> bool:
        return self._serve is not None

    @property
    def has_stream_step(self) -> bool:
        return self._stream is not None and bool(self.info.state_shapes)

    def initial_state(self, batch_size: int = 1) -> Tuple[np.ndarray, ...]:
        """Zero states in the file's own shapes and dtype (int8: its zero point)."""
        if self._stream is None:
            return super().initial_state(batch_size)
        states = []
        for index in range(len(self.info.state_shapes)):
            detail = self.input_details[state_input_name(index)]
            scale, zero_point = detail["quantization"]
            states.append(np.full((batch_size,) + tuple(detail["shape"][1:]),
                                  zero_point if self.integer else 0, detail["dtype"]))
        return tuple(states)

    def _pixels_in(self, pixels: np.ndarray, name: str) -> np.ndarray:
        """Stored pixels as the file takes them: as they are, or (int8 files)
        scaled like the other files' graphs and quantised with the input's own
        scale and zero point."""
        if not self.integer:
            return pixels
        scale = np.float32(frames_lib.MODEL_INPUT_SCALE[self.info.dtype])
        scaled = np.minimum(pixels.astype(np.float32), scale) / scale
        return quantize(scaled, self.input_details[name])

    def _probabilities_out(self, values: np.ndarray) -> np.ndarray:
        if not self.integer:
            return values.copy()   # the runner's buffers are reused by the next call
        return dequantize(values, self.output_details[PROBABILITIES_NAME])

    def _run_windows(self, windows):
        if self._serve is None:
            raise ActrecogError(f"{self.path}: holds only the {STREAM_SIGNATURE}; "
                                f"windows go to the window model's .tflite")
        outputs = self._serve(**{WINDOW_INPUT_NAME: self._pixels_in(windows,
                                                                    WINDOW_INPUT_NAME)})
        return self._probabilities_out(outputs[PROBABILITIES_NAME])

    def _run_stream(self, frames_in, states):
        inputs = {FRAME_INPUT_NAME: self._pixels_in(frames_in, FRAME_INPUT_NAME)}
        inputs.update({state_input_name(i): np.ascontiguousarray(state)
                       for i, state in enumerate(states)})
        outputs = self._stream(**inputs)
        if getattr(self, "_requantized", None) is None:
            # Which new states come out with other (scale, zero point) than their
            # input takes: decided once, from the file's details.
            self._requantized = tuple(
                self.integer and self.output_details[new_state_name(index)]["quantization"]
                != self.input_details[state_input_name(index)]["quantization"]
                for index in range(len(states)))
        new_states = []
        for index in range(len(states)):
            value = outputs[new_state_name(index)]
            if self._requantized[index]:
                value = quantize(dequantize(value, self.output_details[new_state_name(index)]),
                                 self.input_details[state_input_name(index)])
            new_states.append(value.copy())
        return self._probabilities_out(outputs[PROBABILITIES_NAME]), tuple(new_states)


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
    from coreLib.preprocessing import augment

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
