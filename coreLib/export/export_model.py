"""export.py: a trained model as a SavedModel and LiteRT files, checked against Keras.

    export.py MODEL_NAME MODEL_PATH OUT_DIR [--formats saved_model,float32,fp16,dynamic]

Steps:
  1. The window description (classes, window shape, modality, pixel dtype) comes
     from MODEL_PATH's MODEL_DIR ``run_config.json`` or from ``--manifest``; the
     model is built and its weights loaded as score.py does (same checks).
  2. The model is rebuilt where a layer has no builtin LiteRT kernel
     (:func:`rebuild_for_litert`): MaxPool3D with a (1, p, p) pool becomes a 2D
     pool over every frame (TimeDistributed MaxPool2D), recurrent layers of the
     fixed window length are unrolled and never take the cuDNN kernel. The
     rebuilt model holds the same weights and gives the original's outputs
     within 1e-6 (checked here on the parity windows, and in the tests).
  3. The SavedModel's ``serving_default`` takes ``window`` ``(B, L, D, D, C)`` in
     the stored dtype and scales it inside the graph with the training
     pipeline's own :func:`coreLib.preprocessing.records.scale_pixels`; it returns
     ``probabilities (B, K)`` float32. A model with a stream mode (see
     :class:`StreamMode`) also gets ``stream_step``: ``frame (B, D, D, C)`` stored
     dtype and ``state_<i>`` float32 in, ``probabilities`` and ``new_state_<i>``
     out.
  4. LiteRT files are converted from those signatures with builtin ops only (no
     Flex / Select TF ops), which is checked again on each file's op list.
  5. Parity on real windows (the Test JSON of the dataset) or, when none is
     given, seeded random windows: SavedModel vs Keras within 1e-5, LiteRT
     float32 within 1e-4 (a miss raises :class:`ParityError`, exit 1); float16
     and dynamic-range files are reported by top-1 agreement (>= 99 % wanted)
     and max probability difference.
  6. Everything is written into a ``.export.tmp-*`` staging folder inside OUT_DIR
     and renamed into place at the end, ``export.json`` last; an interrupted
     export leaves no file that looks complete.
"""

import contextlib
import hashlib
import os
import posixpath
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import frames, manifest as manifest_lib, window_lists
from coreLib.inference import exported_model, frame_reader, model_loading
from coreLib.preprocessing import records
from coreLib.errors import ActrecogError

tf = storage.tf

import keras  # noqa: E402  (after the quiet TensorFlow import)
from keras import ops  # noqa: E402

SAVED_MODEL_FORMAT = "saved_model"
FLOAT32_FORMAT = "float32"
FP16_FORMAT = "fp16"
DYNAMIC_FORMAT = "dynamic"
FORMAT_NAMES = (SAVED_MODEL_FORMAT, FLOAT32_FORMAT, FP16_FORMAT, DYNAMIC_FORMAT)
LITERT_FORMATS = (FLOAT32_FORMAT, FP16_FORMAT, DYNAMIC_FORMAT)
STREAM_FORMAT = "stream"
RUN_CONFIG_NAME = manifest_lib.RUN_CONFIG_NAME
STAGING_PREFIX = f".export{storage.TEMP_MARKER}"

# Tolerances on max |p_exported - p_keras| over the parity windows.
REBUILT_TOLERANCE = 1e-6
SAVED_MODEL_TOLERANCE = 1e-5
LITERT_FLOAT32_TOLERANCE = 1e-4
# float16 / int8 weights: the share of windows whose top-1 class must agree.
MIN_TOP1_AGREEMENT = 0.99
DEFAULT_PARITY_WINDOWS = 64
PARITY_SEED = 0
# Operator codes of the LiteRT schema that are not builtin kernels.
_CUSTOM_OPERATOR_NAME = "CUSTOM"
_CUDNN_OP_PREFIX = "Cudnn"


class ParityError(Exception):
    """A float32 export whose outputs miss their tolerance (export.py exits 1)."""


def litert_file_name(model_name: str, format_name: str) -> str:
    """``<M>.tflite``, ``<M>_fp16.tflite``, ``<M>_dynamic.tflite``, ``<M>_stream.tflite``."""
    suffix = "" if format_name == FLOAT32_FORMAT else f"_{format_name}"
    return f"{model_name}{suffix}{exported_model.TFLITE_SUFFIX}"


def parse_formats(text: str) -> Tuple[str, ...]:
    """``--formats`` (comma-separated) -> format names in :data:`FORMAT_NAMES` order.

    Raises:
        ActrecogError: an unknown or empty name.
    """
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in FORMAT_NAMES:
            raise ActrecogError(f"--formats: unknown format {name!r}; choose from "
                                f"{', '.join(FORMAT_NAMES)}")
    return tuple(name for name in FORMAT_NAMES if name in names)


@dataclass(frozen=True)
class ExportConfig:
    """What export.py was asked to do.

    Attributes:
        model_name: ``ConvNet3D``, ``LRCN`` or ``DUMMY``.
        model_path: ``.weights.h5`` (train.py) or a full ``.keras`` model.
        out_dir: folder to write (created; an earlier export there is replaced).
        manifest_dir: folder holding ``dataset.json`` (default: MODEL_PATH's
            ``run_config.json``).
        formats: a subset of :data:`FORMAT_NAMES`.
        parity_json: Test JSON whose windows the parity checks run on (default:
            the manifest's Test JSON when ``manifest_dir`` is given and holds one;
            otherwise seeded random windows).
        parity_windows: at most this many windows, spread over the JSON.
        window_stream: also export a ``stream_step`` that keeps the last L-1
            frames as its state (:func:`window_buffer_stream_mode`), for a model
            without a stream mode of its own.
        batch_size: windows per call in the parity runs.
    """
    model_name: str
    model_path: str
    out_dir: str
    manifest_dir: Optional[str] = None
    formats: Tuple[str, ...] = FORMAT_NAMES
    parity_json: Optional[str] = None
    parity_windows: int = DEFAULT_PARITY_WINDOWS
    window_stream: bool = False
    batch_size: int = 16

    def __post_init__(self):
        if not self.formats:
            raise ValueError("formats must name at least one format")
        unknown = [name for name in self.formats if name not in FORMAT_NAMES]
        if unknown:
            raise ValueError(f"unknown formats {unknown}")
        if self.parity_windows < 1:
            raise ValueError(f"parity_windows must be >= 1, got {self.parity_windows}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class StreamMode:
    """A model's stream mode: one frame and the state in, probabilities and the new
    state out (what the SavedModel's ``stream_step`` and ``<M>_stream.tflite`` run).

    Attributes:
        name: what kind of stream mode (recorded in export.json).
        state_shapes: per-example shapes of the float32 states.
        step: ``step(frame (B, D, D, C) float32 scaled, states [(B,) + shape])
            -> (probabilities (B, K) float32, new states)``, Keras layers/ops only.
        trackables: Keras models/layers whose variables ``step`` uses.
        state_names: what each state is (recorded in export.json; the
            signatures call them ``state_<i>`` / ``new_state_<i>``).
    """
    name: str
    state_shapes: Tuple[Tuple[int, ...], ...]
    step: Callable
    trackables: Tuple[object, ...] = ()
    state_names: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote: the ``export.json`` content and the files' paths."""
    description: dict
    files: Tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- input

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
    run_config_path = storage.join(os.path.dirname(model_path) or ".", RUN_CONFIG_NAME)
    run_config = (storage.read_json(run_config_path, "run configuration")
                  if storage.exists(run_config_path) else None)
    if run_config is not None and run_config.get("model_name") != model_name:
        raise ActrecogError(f"{run_config_path}: trained a {run_config.get('model_name')} "
                            f"model, not {model_name}")
    if manifest_dir:
        manifest = manifest_lib.load_manifest(manifest_dir)
        if run_config is not None:
            if (list(run_config.get("window_shape", ())) != list(manifest.window_shape)
                    or list(run_config.get("classes", ())) != list(manifest.classes)
                    or manifest_lib.frame_fields(run_config)["frames"] != manifest.frames):
                raise ActrecogError(
                    f"{run_config_path}: window {run_config.get('window_shape')}, classes "
                    f"or frames differ from {manifest_lib.manifest_path(manifest_dir)}'s "
                    f"{list(manifest.window_shape)} ({manifest.frames} frames)")
        return manifest
    if run_config is None:
        raise ActrecogError(f"{model_path}: no {RUN_CONFIG_NAME} beside it; pass --manifest "
                            f"DATASET_DIR")
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


def check_out_dir(out_dir: str) -> None:
    """OUT_DIR must be a folder (created here) that can be written.

    Raises:
        ActrecogError: OUT_DIR is a file, or not writable.
    """
    if storage.exists(out_dir) and not storage.isdir(out_dir):
        raise ActrecogError(f"{out_dir}: OUT_DIR is a file, not a folder")
    storage.check_writable(out_dir)


def parity_windows(config: ExportConfig, manifest: manifest_lib.Manifest
                   ) -> Tuple[np.ndarray, str]:
    """The windows the parity checks run on, in the stored dtype.

    Returns:
        ``(windows (N, L, D, D, C) stored dtype, where they came from)``.

    Raises:
        ActrecogError: a bad Test JSON or a missing frame.
    """
    json_path = config.parity_json
    if json_path is None and config.manifest_dir and "Test" in manifest.splits:
        candidate = storage.join(config.manifest_dir, manifest.splits["Test"].json_name)
        json_path = candidate if storage.exists(candidate) else None
    if json_path is None:
        rng = np.random.default_rng(PARITY_SEED)
        top = int(np.iinfo(manifest.dtype).max) + 1
        windows = rng.integers(0, top, (config.parity_windows,) + manifest.window_shape)
        return windows.astype(manifest.dtype), f"random (seed {PARITY_SEED})"
    windows = window_lists.read_window_list(json_path, manifest.seq_len, manifest.classes)
    # Spread the chosen windows over the whole JSON (every class, every sequence).
    picked = np.unique(np.linspace(0, len(windows) - 1, min(config.parity_windows,
                                                            len(windows))).astype(int))
    chosen = [windows[number] for number in picked]
    frame_reader.check_frames_exist(chosen, manifest.modality)
    pixels = np.empty((len(chosen),) + manifest.window_shape, manifest.dtype)
    for numbers, batch, _, _ in frame_reader.iterate_batches(chosen, manifest, config.batch_size):
        pixels[numbers] = batch
    return pixels, storage.absolute(json_path)


# --------------------------------------------------------------------------- rebuild

class FramewiseConv3D(keras.layers.Layer):
    """A stride-1 Conv3D as a sum of 2D convolutions of the frames.

    ``out[t] = sum_dt conv2d(x[t + dt - pad], kernel[dt]) + bias``: the same
    weights (``kernel (kt, kh, kw, C_in, C_out)``, ``bias (C_out,)``) and outputs
    as ``keras.layers.Conv3D``, but LiteRT runs it with CONV_2D kernels, which
    XNNPACK accelerates and dynamic-range quantisation turns into int8 weights
    (its CONV_3D kernel is float only and unaccelerated).

    Input ``(B, L, H, W, C_in)`` float32 -> ``(B, L', H', W', C_out)`` float32.
    """

    def __init__(self, filters: int, kernel_size, padding: str = "valid",
                 activation=None, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = tuple(int(size) for size in kernel_size)
        self.padding = padding
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (
            int(input_shape[-1]), self.filters))
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)

    def call(self, inputs):
        time_kernel = self.kernel_size[0]
        x = inputs
        if self.padding == "same":
            before = (time_kernel - 1) // 2   # TensorFlow's 'same': the extra one after
            x = ops.pad(x, [[0, 0], [before, time_kernel - 1 - before], [0, 0], [0, 0],
                            [0, 0]])
        out_len = x.shape[1] - time_kernel + 1
        height, width, channels = x.shape[2:]
        total = None
        for offset in range(time_kernel):
            frames_in = ops.reshape(x[:, offset:offset + out_len], (-1, height, width, channels))
            part = ops.conv(frames_in, self.kernel[offset], strides=1, padding=self.padding)
            total = part if total is None else total + part
        total = ops.reshape(total, (-1, out_len) + tuple(total.shape[1:]))
        if self.bias is not None:
            total = total + self.bias
        return self.activation(total)

    def compute_output_shape(self, input_shape):
        batch, length, height, width, _ = input_shape
        if self.padding == "valid":
            length, height, width = (length - self.kernel_size[0] + 1,
                                     height - self.kernel_size[1] + 1,
                                     width - self.kernel_size[2] + 1)
        return (batch, length, height, width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size,
                      padding=self.padding, use_bias=self.use_bias,
                      activation=keras.activations.serialize(self.activation))
        return config


def rebuild_for_litert(model):
    """The same model built from layers that have builtin LiteRT kernels.

    * ``MaxPooling3D`` whose pool and stride are 1 over time: a
      ``TimeDistributed(MaxPooling2D)`` of the same name (a 2D pool of every
      frame; the 3D pool has no builtin kernel and would need a Flex op).
    * ``LSTM`` / ``GRU`` / ``SimpleRNN``: ``unroll=True`` (the window length is
      fixed; a loop would become a WHILE over tensor lists) and never the cuDNN
      kernel (``use_cudnn=False``), which only a GPU TensorFlow can run.
    * ``Conv3D`` with stride and dilation 1: a :class:`FramewiseConv3D` of the
      same name (CONV_2D kernels: accelerated and int8-quantisable).
    Every other layer is cloned from its config; all weights are copied by layer
    name.

    Args:
        model: a functional ``keras.Model``.

    Returns:
        ``(rebuilt keras.Model, names of the layers replaced)``.
    """
    replaced: List[str] = []

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.MaxPooling3D):
            pool, strides = tuple(layer.pool_size), tuple(layer.strides)
            if (pool[0] == 1 and strides[0] == 1
                    and config.get("data_format", "channels_last") == "channels_last"):
                replaced.append(layer.name)
                return keras.layers.TimeDistributed(
                    keras.layers.MaxPooling2D(pool[1:], strides[1:], padding=layer.padding),
                    name=layer.name)
        if (isinstance(layer, keras.layers.Conv3D)
                and tuple(layer.strides) == (1, 1, 1)
                and tuple(layer.dilation_rate) == (1, 1, 1) and layer.groups == 1
                and config.get("data_format", "channels_last") == "channels_last"):
            replaced.append(layer.name)
            return FramewiseConv3D(layer.filters, layer.kernel_size, layer.padding,
                                   config["activation"], layer.use_bias, name=layer.name)
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)):
            replaced.append(layer.name)
            config["unroll"] = True
            if not isinstance(layer, keras.layers.SimpleRNN):
                config["use_cudnn"] = False   # a constructor argument, not in the config
        return layer.__class__.from_config(config)

    rebuilt = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.weights:
            rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    return rebuilt, tuple(replaced)


def window_buffer_stream_mode(model, window_shape: Sequence[int]) -> StreamMode:
    """A stream mode for any window model: the state is the last L-1 scaled frames.

    Each step appends the new frame, runs the window model on the last L frames
    and keeps the last L-1 as the next state; after L frames (from the zero
    state) the probabilities are the window model's on those L frames.

    Args:
        model: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32.
        window_shape: ``(L, D, D, C)``.
    """
    seq_len = int(window_shape[0])
    frame_shape = tuple(int(size) for size in window_shape[1:])

    def step(frame, states):
        window = ops.concatenate([states[0], ops.expand_dims(frame, 1)], axis=1)
        return model(window, training=False), [window[:, 1:]]

    return StreamMode("window_buffer", ((seq_len - 1,) + frame_shape,), step, (model,),
                      ("previous_frames",))


def find_stream_mode(model) -> Optional[StreamMode]:
    """The model's own stream mode: CausalMobileNet's
    ``coreLib.models.streaming.build_stream_model`` (dict inputs ``frame`` + the
    states of ``stream_state_specs``, dict outputs ``probabilities`` + the new
    states of the same names); None for every other model.
    """
    from coreLib.models import streaming
    if model.name != streaming.CAUSAL_MOBILENET_NAME:
        return None
    stream_model = streaming.build_stream_model(model)
    specs = streaming.stream_state_specs(model)
    names = tuple(specs)

    def step(frame, states):
        inputs = {streaming.FRAME_INPUT_NAME: frame}
        inputs.update({name: ops.cast(state, specs[name].dtype)
                       for name, state in zip(names, states)})
        outputs = stream_model(inputs, training=False)
        return (outputs[streaming.OUTPUT_NAME],
                [ops.cast(outputs[name], "float32") for name in names])

    return StreamMode(model.name, tuple(tuple(specs[name].shape) for name in names), step,
                      (stream_model,), names)


# --------------------------------------------------------------------------- SavedModel

def write_saved_model(model, manifest: manifest_lib.Manifest, folder: str,
                      stream_mode: Optional[StreamMode] = None) -> None:
    """Writes the SavedModel: ``serving_default`` and, with a stream mode, ``stream_step``.

    Args:
        model: the (rebuilt) Keras model, ``(B, L, D, D, C)`` float32 -> ``(B, K)``.
        manifest: window shape and stored pixel dtype.
        folder: where to write (must not exist yet).
        stream_mode: see :class:`StreamMode`.
    """
    pixel_dtype = tf.dtypes.as_dtype(manifest.dtype)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(window):
        scaled = records.scale_pixels(window, manifest.dtype)
        return {exported_model.PROBABILITIES_NAME: model(scaled, training=False)}

    archive.add_endpoint(exported_model.SERVING_SIGNATURE, serve, input_signature=[
        tf.TensorSpec((None,) + tuple(manifest.window_shape), pixel_dtype,
                      name=exported_model.WINDOW_INPUT_NAME)])
    if stream_mode is not None:
        for trackable in stream_mode.trackables:
            if trackable is not model:
                archive.track(trackable)
        state_count = len(stream_mode.state_shapes)

        def stream_step(frame, *states):
            scaled = records.scale_pixels(frame, manifest.dtype)
            probabilities, new_states = stream_mode.step(scaled, list(states))
            outputs = {exported_model.PROBABILITIES_NAME: probabilities}
            outputs.update({exported_model.new_state_name(i): new_states[i]
                            for i in range(state_count)})
            return outputs

        signature = [tf.TensorSpec((None,) + tuple(manifest.window_shape[1:]), pixel_dtype,
                                   name=exported_model.FRAME_INPUT_NAME)]
        signature += [tf.TensorSpec((None,) + tuple(shape), tf.float32,
                                    name=exported_model.state_input_name(i))
                      for i, shape in enumerate(stream_mode.state_shapes)]
        archive.add_endpoint(exported_model.STREAM_SIGNATURE, stream_step,
                             input_signature=signature)
    archive.write_out(folder, verbose=False)


def saved_model_op_types(folder: str) -> List[str]:
    """Sorted op types in a SavedModel's graph and its functions."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(storage.read_bytes(storage.join(folder, "saved_model.pb")))
    found = set()
    for graph in proto.meta_graphs:
        found.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            found.update(node.op for node in function.node_def)
    return sorted(found)


# --------------------------------------------------------------------------- LiteRT

def convert_to_litert(saved_model_dir: str, signature: str, format_name: str) -> bytes:
    """Converts one SavedModel signature to a LiteRT flatbuffer, builtin ops only.

    Args:
        saved_model_dir: the SavedModel folder.
        signature: ``serving_default`` or ``stream_step``.
        format_name: ``float32``, ``fp16`` (float16 weights) or ``dynamic``
            (dynamic-range int8 weights).

    Raises:
        ActrecogError: the graph needs an op without a builtin LiteRT kernel.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[signature])
    # Builtin kernels only: the ai-edge-litert runtime has no Flex delegate.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if format_name in (FP16_FORMAT, DYNAMIC_FORMAT):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if format_name == FP16_FORMAT:
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as error:  # the converter raises its own ConverterError and others
        lines = [line.strip() for line in str(error).splitlines() if "error" in line.lower()]
        reason = (lines or [type(error).__name__])[0]
        raise ActrecogError(f"{saved_model_dir}: {signature} does not convert to LiteRT "
                            f"with builtin ops only ({reason})") from None


def litert_op_names(model_content: bytes) -> List[str]:
    """Sorted operator names a LiteRT flatbuffer uses (``CUSTOM:<code>`` for non-builtin).

    Read from the flatbuffer's operator codes, so a file is checked without
    being run (a Flex op would make the interpreter fail only at allocation).
    """
    from ai_edge_litert import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    model = schema.Model.GetRootAs(model_content, 0)
    found = set()
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        # Codes above 127 live in BuiltinCode; older files only in the deprecated byte.
        value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(value, f"BUILTIN_{value}")
        if name == _CUSTOM_OPERATOR_NAME:
            name = f"{_CUSTOM_OPERATOR_NAME}:{(code.CustomCode() or b'').decode()}"
        found.add(name)
    return sorted(found)


def check_builtin_only(op_names: Sequence[str], what: str) -> None:
    """Raises ActrecogError when a LiteRT file holds a custom or Flex op."""
    custom = [name for name in op_names if name.startswith(_CUSTOM_OPERATOR_NAME)]
    if custom:
        raise ActrecogError(f"{what}: holds non-builtin LiteRT ops {', '.join(custom)}")


# --------------------------------------------------------------------------- parity

def keras_probabilities(model, windows: np.ndarray, dtype: str,
                        batch_size: int) -> np.ndarray:
    """``(N, K)`` float32: the Keras model on the scaled windows, batch by batch."""
    parts = [np.asarray(model(records.scale_pixels(windows[begin:begin + batch_size], dtype),
                              training=False))
             for begin in range(0, len(windows), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def exported_probabilities(runner: exported_model.ExportedModel, windows: np.ndarray,
                           batch_size: int) -> np.ndarray:
    """``(N, K)`` float32 from an exported model, batch by batch."""
    return np.concatenate([runner.predict(windows[begin:begin + batch_size])
                           for begin in range(0, len(windows), batch_size)])


def stream_probabilities(step: Callable, initial_states, windows: np.ndarray
                         ) -> np.ndarray:
    """Probabilities after feeding each window's frames one by one from zero state.

    Args:
        step: ``step(frames (N, D, D, C), states) -> (probabilities, states)``.
        initial_states: the zero states for N streams.
        windows: ``(N, L, D, D, C)`` stored dtype.

    Returns:
        ``(N, K)`` float32 probabilities of the last step.
    """
    states = initial_states
    probabilities = None
    for offset in range(windows.shape[1]):
        probabilities, states = step(np.ascontiguousarray(windows[:, offset]), states)
    return np.asarray(probabilities, np.float32)


def compare(reference: np.ndarray, probabilities: np.ndarray,
            tolerance: Optional[float]) -> dict:
    """Parity figures of one format against the Keras probabilities.

    Returns:
        ``{"max_abs_diff", "top1_agreement", "tolerance"?, "min_top1_agreement"?,
        "passed"}``.
    """
    max_diff = float(np.max(np.abs(reference - probabilities)))
    agreement = float(np.mean(reference.argmax(axis=1) == probabilities.argmax(axis=1)))
    figures = {"max_abs_diff": max_diff, "top1_agreement": agreement}
    if tolerance is not None:
        figures.update(tolerance=tolerance, passed=bool(max_diff <= tolerance))
    else:
        figures.update(min_top1_agreement=MIN_TOP1_AGREEMENT,
                       passed=bool(agreement >= MIN_TOP1_AGREEMENT))
    return figures


# --------------------------------------------------------------------------- files

def folder_digest(folder: str) -> Tuple[int, str, int]:
    """``(bytes, sha256, files)`` of a folder: the sha256 over each file's relative
    path and sha256, in sorted order (equal trees give equal digests)."""
    total, count = 0, 0
    digest = hashlib.sha256()
    for root, _, names in sorted(tf.io.gfile.walk(folder)):
        for name in sorted(names):
            path = storage.join(root, name)
            relative = posixpath.relpath(path.replace(os.sep, "/"),
                                         folder.replace(os.sep, "/"))
            digest.update(f"{relative}\0{storage.sha256_of(path)}\n".encode())
            total += tf.io.gfile.stat(path).length
            count += 1
    return total, digest.hexdigest(), count


def _remove(path: str) -> None:
    if storage.isdir(path):
        tf.io.gfile.rmtree(path)
    elif storage.exists(path):
        tf.io.gfile.remove(path)


def remove_stale_staging(out_dir: str) -> None:
    """Deletes staging folders an interrupted export left in OUT_DIR."""
    for name in storage.listdir(out_dir):
        if name.startswith(STAGING_PREFIX):
            _remove(storage.join(out_dir, name))


# --------------------------------------------------------------------------- driver

def export(config: ExportConfig, log: Callable[[str], None] = lambda line: None
           ) -> ExportResult:
    """Exports a trained model; see the module docstring.

    Args:
        config: see :class:`ExportConfig`.
        log: receives one progress line per step.

    Returns:
        The ``export.json`` content and the paths written.

    Raises:
        ActrecogError: bad input (nothing written).
        ParityError: a float32 format missed its tolerance (nothing written).
    """
    began = time.perf_counter()
    manifest = window_description(config.model_name, config.model_path, config.manifest_dir)
    check_out_dir(config.out_dir)
    model = model_loading.load_model(config.model_name, config.model_path, manifest)
    windows, windows_source = parity_windows(config, manifest)
    reference = keras_probabilities(model, windows, manifest.dtype, config.batch_size)

    rebuilt, replaced = rebuild_for_litert(model)
    rebuilt_diff = float(np.max(np.abs(
        keras_probabilities(rebuilt, windows, manifest.dtype, config.batch_size) - reference)))
    if rebuilt_diff > REBUILT_TOLERANCE:
        raise ParityError(f"{config.model_path}: the model rebuilt for LiteRT differs from "
                          f"the Keras model by {rebuilt_diff:.3g} (> {REBUILT_TOLERANCE})")
    stream_mode = find_stream_mode(rebuilt)
    if stream_mode is None and config.window_stream:
        stream_mode = window_buffer_stream_mode(rebuilt, manifest.window_shape)

    out_dir = config.out_dir
    remove_stale_staging(out_dir)
    staging = storage.join(out_dir, f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        storage.makedirs(staging)
        saved_model_dir = storage.join(staging, exported_model.SAVED_MODEL_FOLDER)
        log("writing the SavedModel")
        _write_checked_saved_model(config, rebuilt, manifest, saved_model_dir, stream_mode)
        info = exported_model.ExportInfo(
            config.model_name, manifest.classes, manifest.window_shape, manifest.modality,
            manifest.dtype, stream_mode.state_shapes if stream_mode else (), {})

        parity = {"num_windows": int(len(windows)), "windows": windows_source,
                  "rebuilt_keras": {"max_abs_diff": rebuilt_diff,
                                    "tolerance": REBUILT_TOLERANCE, "passed": True}}
        runners: Dict[str, exported_model.ExportedModel] = {}
        runners[SAVED_MODEL_FORMAT] = exported_model.SavedModelRunner(saved_model_dir, info)
        parity[SAVED_MODEL_FORMAT] = compare(
            reference, exported_probabilities(runners[SAVED_MODEL_FORMAT], windows,
                                              config.batch_size), SAVED_MODEL_TOLERANCE)

        staged: Dict[str, str] = {}   # final name -> staged path
        if SAVED_MODEL_FORMAT in config.formats:
            staged[exported_model.SAVED_MODEL_FOLDER] = saved_model_dir
        ops = _write_litert_files(config, saved_model_dir, staging, stream_mode is not None,
                                  info, reference, windows, staged, runners, parity, log)

        stream_description = None
        if stream_mode is not None:
            stream_description = _stream_parity(stream_mode, runners, staged, config,
                                                manifest, windows, info)

        if stream_description:
            parity.update(stream_description.pop("parity"))
        _raise_on_parity_failure(config, parity, len(windows))
        files = _file_entries(staged, ops)
        description = _export_description(config, manifest, replaced, files, parity, began)
        if stream_description:
            description["stream"] = stream_description
            description["signatures"][exported_model.STREAM_SIGNATURE] = stream_description[
                "signature"]
        written = _publish(out_dir, staged, description)
    finally:
        with contextlib.suppress(Exception):
            _remove(staging)
    return ExportResult(description, written)


def _export_description(config: ExportConfig, manifest: manifest_lib.Manifest,
                        replaced, files: dict, parity: dict, began: float) -> dict:
    """``export.json`` without its stream part: what the files hold and how they
    compare with the Keras model."""
    return {
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
        "files": files,
        "parity": parity,
        "seconds": round(time.perf_counter() - began, 3),
    }


def _write_checked_saved_model(config: ExportConfig, model, manifest: manifest_lib.Manifest,
                               saved_model_dir: str, stream_mode) -> None:
    """Writes the SavedModel and refuses a graph holding cuDNN-only ops."""
    write_saved_model(model, manifest, saved_model_dir, stream_mode)
    cudnn_ops = [op for op in saved_model_op_types(saved_model_dir)
                 if op.startswith(_CUDNN_OP_PREFIX)]
    if cudnn_ops:
        raise ActrecogError(f"{config.model_path}: the exported graph holds cuDNN-only "
                            f"ops {', '.join(cudnn_ops)}")


def _write_litert_files(config: ExportConfig, saved_model_dir: str, staging: str,
                        has_stream: bool, info, reference: np.ndarray, windows: np.ndarray,
                        staged: Dict[str, str], runners: dict, parity: dict,
                        log: Callable[[str], None]) -> Dict[str, List[str]]:
    """Converts the SavedModel's signatures to the requested LiteRT files in
    ``staging`` (builtin ops only), adding each to ``staged`` and its parity with
    the Keras ``reference`` to ``parity``. Returns each file's op names."""
    ops: Dict[str, List[str]] = {}
    jobs = [(name, exported_model.SERVING_SIGNATURE) for name in LITERT_FORMATS
            if name in config.formats]
    if has_stream and FLOAT32_FORMAT in config.formats:
        jobs.append((STREAM_FORMAT, exported_model.STREAM_SIGNATURE))
    for format_name, signature in jobs:
        log(f"converting {signature} to LiteRT {format_name}")
        content = convert_to_litert(
            saved_model_dir, signature,
            FLOAT32_FORMAT if format_name == STREAM_FORMAT else format_name)
        file_name = litert_file_name(config.model_name, format_name)
        ops[file_name] = litert_op_names(content)
        check_builtin_only(ops[file_name], file_name)
        path = storage.join(staging, file_name)
        storage.write_bytes_atomic(path, content)
        staged[file_name] = path
        if format_name != STREAM_FORMAT:
            runners[format_name] = exported_model.LiteRTRunner(path, info)
            tolerance = LITERT_FLOAT32_TOLERANCE if format_name == FLOAT32_FORMAT else None
            parity[f"litert_{format_name}"] = compare(
                reference, exported_probabilities(runners[format_name], windows,
                                                  config.batch_size), tolerance)
    return ops


def _raise_on_parity_failure(config: ExportConfig, parity: dict, num_windows: int) -> None:
    """ParityError naming the first float32 format that missed its tolerance."""
    failed = [name for name in (SAVED_MODEL_FORMAT, f"litert_{FLOAT32_FORMAT}",
                                "stream_saved_model", "stream_litert")
              if name in parity and not parity[name]["passed"]]
    if failed:
        name = failed[0]
        raise ParityError(
            f"{config.model_path}: {name} differs from the Keras model by "
            f"{parity[name]['max_abs_diff']:.3g} (tolerance {parity[name]['tolerance']}) "
            f"on {num_windows} windows")


def _file_entries(staged: Dict[str, str], ops: Dict[str, List[str]]) -> dict:
    """``export.json``'s ``files``: bytes and sha256 per staged file (folders too)."""
    files = {}
    for name, path in staged.items():
        if storage.isdir(path):
            size, digest, count = folder_digest(path)
            files[name] = {"bytes": size, "sha256": digest, "files": count}
        else:
            files[name] = {"bytes": storage.file_size(path), "sha256": storage.sha256_of(path)}
        if name in ops:
            files[name]["ops"] = ops[name]
    return files


def _stream_parity(stream_mode: StreamMode, runners, staged, config: ExportConfig,
                   manifest: manifest_lib.Manifest, windows: np.ndarray,
                   info: exported_model.ExportInfo) -> dict:
    """The stream step's description and parity (SavedModel and LiteRT vs Keras)."""
    def keras_step(frame, states):
        probabilities, new_states = stream_mode.step(
            records.scale_pixels(frame, manifest.dtype),
            [tf.constant(state) for state in states])
        return np.asarray(probabilities), [np.asarray(state) for state in new_states]

    zero = runners[SAVED_MODEL_FORMAT].initial_state(len(windows))
    reference = stream_probabilities(keras_step, zero, windows)
    parity = {"stream_saved_model": compare(
        reference, stream_probabilities(runners[SAVED_MODEL_FORMAT].stream_step, zero,
                                         windows), SAVED_MODEL_TOLERANCE)}
    stream_file = litert_file_name(config.model_name, STREAM_FORMAT)
    if stream_file in staged:
        runner = exported_model.LiteRTRunner(staged[stream_file], info)
        parity["stream_litert"] = compare(
            reference, stream_probabilities(runner.stream_step, zero, windows),
            LITERT_FLOAT32_TOLERANCE)
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
                          "outputs": outputs},
            "parity": parity}


def _publish(out_dir: str, staged: Dict[str, str], description: dict) -> Tuple[str, ...]:
    """Renames the staged outputs into OUT_DIR, ``export.json`` last.

    The old ``export.json`` goes first, so while files are being replaced no
    description vouches for a mix of old and new ones.
    """
    json_path = storage.join(out_dir, exported_model.EXPORT_JSON_NAME)
    _remove(json_path)
    written = []
    for name, path in staged.items():
        target = storage.join(out_dir, name)
        _remove(target)
        tf.io.gfile.rename(path, target)
        written.append(target)
    storage.write_json_atomic(json_path, description)
    written.append(json_path)
    return tuple(written)


def summary_lines(result: ExportResult) -> List[str]:
    """What export.py prints: one line per file, then the parity figures."""
    description = result.description
    lines = []
    for name, entry in description["files"].items():
        lines.append(f"{name}: {entry['bytes']} bytes")
    parity = description["parity"]
    lines.append(f"parity on {parity['num_windows']} windows ({parity['windows']}):")
    for name, figures in parity.items():
        if not isinstance(figures, dict):
            continue
        verdict = "ok" if figures["passed"] else "BELOW TARGET"
        agreement = (f", top-1 agreement {figures['top1_agreement'] * 100:.1f}%"
                     if "top1_agreement" in figures else "")
        lines.append(f"  {name}: max |diff| {figures['max_abs_diff']:.3g}{agreement} "
                     f"[{verdict}]")
    lines.append(f"wrote {result.files[-1]}")
    return lines
