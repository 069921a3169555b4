"""CausalMobileNet: a small streaming action model after MoViNet's stream models.

The ideas are those of MoViNet's stream variants (Kondratyuk et al. 2021), built
small enough for a headset CPU:

* per-frame spatial convolutions in MobileNetV2-style inverted bottlenecks
  (1x1 expansion, 3x3 depthwise, 1x1 linear projection, residual when the shape
  allows);
* a *causal* depthwise temporal convolution in every block: frame t mixes with
  frame t-1 only (left padding with zeros, never right), so together with the
  depthwise 3x3 it is a factorised 2x3x3 depthwise kernel that cannot look ahead;
* causal cumulative global average pooling: the features at frame t are the mean
  over space and over frames 1..t (in a stream past the window length L, over
  the last L frames, so that an endless stream keeps answering about what is in
  view now, pooled as in training).

So the prediction at frame t depends on frames <= t only, and the whole-window
output is the classifier applied to the cumulative average at the last frame: it
equals what the stream mode gives after the window's L-th frame.

Three Keras models share one set of layers (and so one set of weights):

* the window model (:func:`build_causal_mobilenet`, registered in
  ``coreLib.models``): ``(B, L, D, D, C)`` float32 in [0, 1] -> ``(B, K)`` float32
  probabilities, like ConvNet3D and LRCN;
* the per-frame model (:func:`build_per_frame_model`): ``(B, L, D, D, C)`` ->
  ``(B, L, K)``, the prediction after each frame;
* the stream model (:func:`build_stream_model`): one frame ``(B, D, D, C)`` and
  the state in, probabilities ``(B, K)`` and the new state out. The state is each
  temporal convolution's last ``k - 1`` input frames and the pooling's last L - 1
  per-frame means and frame count (capped at L), so a sequence runs frame by frame
  for ever at a fixed cost per frame
  (:class:`coreLib.models.stream_runner.StreamRunner`).

The window graph is the stream graph run on L frames with an all-zero state, so
the two agree by construction (to float rounding).

Only Keras layers and ``keras.ops`` are used, so the models also run under
``KERAS_BACKEND=jax``. This module holds the names, the sizes and the graphs; the
layers are in :mod:`coreLib.models.causal_layers`, the frame-by-frame runner in
:mod:`coreLib.models.stream_runner`, the defaults shared with the other models in
:mod:`coreLib.models.constants`.
"""

import os
from dataclasses import dataclass
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np

from coreLib.cli import import_tensorflow_quietly
from coreLib.errors import ActrecogError

# Only the TensorFlow backend needs TensorFlow (bench/gpu_models.py runs on JAX).
if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import_tensorflow_quietly()

import keras  # noqa: E402  (after the quiet TensorFlow import)
from keras import layers  # noqa: E402

# The layers are importable from here too (streaming.PerFrame, ...): the graphs use them.
from coreLib.models.causal_layers import (  # noqa: E402
    TEMPORAL_KERNEL, CausalTemporalConv, CumulativeAveragePooling, LastFrame, PerFrame)
from coreLib.models.constants import BN_MOMENTUM, DROPOUT_RATE, L2_FACTOR  # noqa: E402

CAUSAL_MOBILENET_NAME = "CausalMobileNet"
STREAM_MODEL_SUFFIX = "_stream"
PER_FRAME_MODEL_SUFFIX = "_per_frame"

# A 2x2 stride-2 stem ("patchify" at half the side: 16x16 maps at 32x32, as
# MoViNet-A0's 3x3 stride-2 stem leaves). The earlier 4x4 stride-4 stem (8x8 maps)
# lost the fingers: in the demo's budget the 2x2 stem gave higher Eval accuracy on
# both synthetic families (docs/benchmarks.md, peers; issue 19's ablation) at about
# 4x the spatial work of the blocks. Non-overlapping patches keep the stem the
# cheapest layer to run; a 3x3 stride-2 stem would read every pixel 2.25 times.
STEM_FILTERS = 24
STEM_STRIDE = 2


class BlockSpec(NamedTuple):
    """One inverted bottleneck: 1x1 to ``expanded`` channels (skipped when it equals
    the input's), 3x3 depthwise with ``stride``, causal temporal depthwise, 1x1 to
    ``filters``."""
    expanded: int
    filters: int
    stride: int


# MobileNetV2's progression (expansion 1, then 3-4) at a third of its widths,
# ending at 1/8 of the frame side (4x4 at 32x32, 8x8 at 64x64).
BLOCKS: Tuple[BlockSpec, ...] = (
    BlockSpec(expanded=24, filters=32, stride=2),
    BlockSpec(expanded=96, filters=32, stride=1),
    BlockSpec(expanded=96, filters=48, stride=2),
    BlockSpec(expanded=192, filters=48, stride=1),
    BlockSpec(expanded=192, filters=64, stride=1),
)
HEAD_FILTERS = 192
HEAD_DENSE_UNITS = 128
RELU_MAX = 6.0          # ReLU6 as MobileNetV2: bounded activations suit bfloat16
# The stem and two stride-2 blocks: below 8x8 the last feature map would be
# mostly padding.
MIN_IMAGE_DIM = STEM_STRIDE * int(np.prod([block.stride for block in BLOCKS]))

STATE_BUFFER_SUFFIX = "_buffer"
POOL_HISTORY_NAME = "pool_history"
POOL_COUNT_NAME = "pool_count"
FRAME_INPUT_NAME = "frame"
OUTPUT_NAME = "probabilities"


# layer(name, make) returns the layer of that name; make(name) creates it. The
# builder creates every layer; the stream and per-frame builders look them up in
# the window model, so one function wires all three models.
LayerSource = Callable[[str, Callable[[str], layers.Layer]], layers.Layer]


def _makers(layer: LayerSource, bn_momentum: float):
    """``(conv, norm, relu)``: per-frame conv, BatchNorm and ReLU6 by name."""
    def conv(name: str, filters: int, kernel: int, stride: int = 1):
        return layer(name, lambda name: PerFrame(
            layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                          kernel_regularizer=keras.regularizers.L2(L2_FACTOR),
                          name=f"{name}_2d"), name=name))

    def norm(name: str):
        return layer(name, lambda name: layers.BatchNormalization(momentum=bn_momentum,
                                                                  name=name))

    def relu(name: str):
        return layer(name, lambda name: layers.ReLU(max_value=RELU_MAX, name=name))

    return conv, norm, relu


def _features(window, layer: LayerSource, bn_momentum: float,
              state: Optional[Dict[str, object]] = None):
    """Stem, inverted bottlenecks, head convolution and cumulative pooling.

    Args:
        window: ``(B, T, D, D, C)`` tensor.
        layer: where the layers come from (see ``LayerSource``).
        bn_momentum: BatchNorm momentum (used only when layers are created).
        state: None (a window from its first frame) or the stream state by name.

    Returns:
        ``(averages, new_state)``: ``(B, T, HEAD_FILTERS)`` float32 cumulative
        averages, and the new state by name (empty without ``state``).
    """
    new_state: Dict[str, object] = {}
    conv, norm, relu = _makers(layer, bn_momentum)
    x = conv("stem_conv", STEM_FILTERS, STEM_STRIDE, STEM_STRIDE)(window)
    x = relu("stem_relu")(norm("stem_norm")(x))
    channels = STEM_FILTERS
    for index, spec in enumerate(BLOCKS, start=1):
        prefix = f"block{index}"
        shortcut = x
        if spec.expanded != channels:
            x = conv(f"{prefix}_expand", spec.expanded, 1)(x)
            x = relu(f"{prefix}_expand_relu")(norm(f"{prefix}_expand_norm")(x))
        x = layer(f"{prefix}_spatial", lambda name, stride=spec.stride: PerFrame(
            layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                   name=f"{name}_2d"), name=name))(x)
        temporal = layer(f"{prefix}_temporal",
                         lambda name: CausalTemporalConv(TEMPORAL_KERNEL, name=name))
        if state is None:
            x, _ = temporal(x)
        else:
            buffer_name = temporal.name + STATE_BUFFER_SUFFIX
            x, new_state[buffer_name] = temporal([x, state[buffer_name]])
        x = relu(f"{prefix}_temporal_relu")(norm(f"{prefix}_temporal_norm")(x))
        x = conv(f"{prefix}_project", spec.filters, 1)(x)
        x = norm(f"{prefix}_project_norm")(x)
        if spec.stride == 1 and spec.filters == channels:
            x = layer(f"{prefix}_add", lambda name: layers.Add(name=name))([shortcut, x])
        channels = spec.filters
    x = conv("head_conv", HEAD_FILTERS, 1)(x)
    x = relu("head_relu")(norm("head_norm")(x))
    pool = layer("pool", lambda name: CumulativeAveragePooling(
        horizon=window.shape[1], dtype="float32", name=name))
    if state is None:
        return pool(x)[0], new_state
    averages, new_state[POOL_HISTORY_NAME], new_state[POOL_COUNT_NAME] = pool(
        [x, state[POOL_HISTORY_NAME], state[POOL_COUNT_NAME]])
    return averages, new_state


def _classifier(features, layer: LayerSource, num_classes: int):
    """Dense relu -> Dropout -> Dense softmax (float32) on the last axis."""
    x = layer("fc1", lambda name: layers.Dense(
        HEAD_DENSE_UNITS, activation="relu",
        kernel_regularizer=keras.regularizers.L2(L2_FACTOR), name=name))(features)
    x = layer("fc1_dropout", lambda name: layers.Dropout(DROPOUT_RATE, name=name))(x)
    return layer(OUTPUT_NAME, lambda name: layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=name))(x)


def _check_window_shape(seq_len: int, image_dim: int, channels: int,
                        num_classes: int) -> None:
    for arg, value in (("seq_len", seq_len), ("image_dim", image_dim),
                       ("channels", channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ActrecogError(f"{CAUSAL_MOBILENET_NAME}: {arg} must be a positive "
                                f"integer, got {value!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ActrecogError(f"{CAUSAL_MOBILENET_NAME}: num_classes must be an integer "
                            f">= 2, got {num_classes!r}")
    if image_dim < MIN_IMAGE_DIM:
        raise ActrecogError(f"{CAUSAL_MOBILENET_NAME}: image_dim {image_dim} is too "
                            f"small; its three stride-2 stages need image_dim >= "
                            f"{MIN_IMAGE_DIM}")


def build_causal_mobilenet(seq_len: int, image_dim: int, channels: int,
                           num_classes: int,
                           bn_momentum: float = BN_MOMENTUM) -> "keras.Model":
    """The window model of CausalMobileNet (see the module docstring).

    Stem 2x2/2 conv 24 -> BN -> ReLU6 -> five inverted bottlenecks
    (:data:`BLOCKS`), each 1x1 expand -> BN -> ReLU6 (not in block 1) -> 3x3
    depthwise (stride 1 or 2) -> causal temporal depthwise (2 frames) -> BN ->
    ReLU6 -> 1x1 project -> BN (+ residual) -> 1x1 conv 192 -> BN -> ReLU6 ->
    cumulative average pooling -> last frame -> Dense 128 relu -> Dropout -> Dense
    softmax. At (6, 64, 64, 3) and 17 classes: 107,065 parameters, 86.0 MFLOP per
    window (``coreLib.models.model_info.model_flops``), 1/320 of ConvNet3D's; at
    (6, 32, 32, 1): 106,873 parameters, 21.0 MFLOP.

    Args:
        seq_len: frames per window L (any >= 1: the model is causal).
        image_dim: frame side D (>= :data:`MIN_IMAGE_DIM`, 8).
        channels: C (1 for depth/confi, 3 for colour).
        num_classes: output classes K.
        bn_momentum: momentum of the BatchNorm moving statistics.

    Returns:
        ``keras.Model`` named ``CausalMobileNet``: ``(B, L, D, D, C)`` float32 in
        [0, 1] -> ``(B, K)`` float32 probabilities (the classifier on the
        cumulative average at frame L), output layer ``probabilities``.

    Raises:
        ActrecogError: a non-positive size or ``image_dim`` below the minimum.
    """
    _check_window_shape(seq_len, image_dim, channels, num_classes)

    def create(name, make):
        return make(name)

    inputs = keras.Input((seq_len, image_dim, image_dim, channels), name="window")
    averages, _ = _features(inputs, create, bn_momentum)
    last = LastFrame(name="last_frame")(averages)
    outputs = _classifier(last, create, num_classes)
    return keras.Model(inputs, outputs, name=CAUSAL_MOBILENET_NAME)


def _check_is_window_model(model) -> None:
    if getattr(model, "name", None) != CAUSAL_MOBILENET_NAME:
        raise ActrecogError(f"stream mode needs a {CAUSAL_MOBILENET_NAME} window model, "
                            f"got {getattr(model, 'name', type(model).__name__)!r}")


def _lookup(window_model, replacements: Optional[Dict[str, layers.Layer]] = None
            ) -> LayerSource:
    replacements = replacements or {}

    def find(name, make):
        return replacements[name] if name in replacements else window_model.get_layer(name)
    return find


def _bn_momentum_of(window_model) -> float:
    return window_model.get_layer("stem_norm").momentum


@dataclass(frozen=True)
class StateSpec:
    """One stream state tensor: ``(batch,) + shape`` of ``dtype``."""
    shape: Tuple[int, ...]
    dtype: str


def stream_state_specs(window_model) -> Dict[str, StateSpec]:
    """The stream state of a CausalMobileNet, by name, in wiring order.

    ``block<i>_temporal_buffer``: ``(k - 1, H, W, E)`` in the layer's compute dtype
    (bfloat16 / float16 under mixed precision), the last k-1 frames that reached
    that temporal convolution; ``pool_history``: ``(max(L - 1, 1), F)`` float32,
    the per-frame spatial means of the last L - 1 frames (newest last);
    ``pool_count``: ``(1,)`` float32, the frames seen, capped at L.

    Raises:
        ActrecogError: not a CausalMobileNet window model.
    """
    _check_is_window_model(window_model)
    specs: Dict[str, StateSpec] = {}
    for layer in window_model.layers:
        if isinstance(layer, CausalTemporalConv):
            shape = (layer.kernel_size - 1,) + tuple(layer.input.shape[2:])
            specs[layer.name + STATE_BUFFER_SUFFIX] = StateSpec(shape, layer.compute_dtype)
        elif isinstance(layer, CumulativeAveragePooling):
            specs[POOL_HISTORY_NAME] = StateSpec(
                (layer.history_length, int(layer.input.shape[-1])), "float32")
            specs[POOL_COUNT_NAME] = StateSpec((1,), "float32")
    return specs


def initial_stream_state(window_model, batch_size: int) -> Dict[str, np.ndarray]:
    """The all-zero state before a sequence's first frame (for ``batch_size`` streams).

    Raises:
        ActrecogError: not a CausalMobileNet, or a non-positive batch size.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ActrecogError(f"stream batch_size must be a positive integer, "
                            f"got {batch_size!r}")
    return {name: np.zeros((batch_size,) + spec.shape, dtype=spec.dtype)
            for name, spec in stream_state_specs(window_model).items()}


def check_stream_state(window_model, state: Dict[str, object],
                       batch_size: Optional[int] = None) -> None:
    """Checks a state's names and shapes against :func:`stream_state_specs`.

    Args:
        window_model: the CausalMobileNet the state belongs to.
        state: name -> array ``(B,) + spec.shape``.
        batch_size: the B every entry must have (default: the first entry's).

    Raises:
        ActrecogError: a missing or unknown entry, or one of the wrong shape (named).
    """
    specs = stream_state_specs(window_model)
    if not isinstance(state, dict):
        raise ActrecogError(f"stream state must be a dict of {', '.join(specs)}, "
                            f"got {type(state).__name__}")
    missing = [name for name in specs if name not in state]
    unknown = sorted(set(state) - set(specs))
    if missing or unknown:
        raise ActrecogError(f"stream state: missing {missing or 'nothing'}, unknown "
                            f"{unknown or 'nothing'}")
    for name, spec in specs.items():
        value = state[name]
        shape = tuple(value.shape) if hasattr(value, "shape") else tuple(np.shape(value))
        if batch_size is None and shape:
            batch_size = shape[0]
        wanted = (batch_size,) + spec.shape
        if shape != wanted:
            raise ActrecogError(f"stream state {name}: shape {shape}, expected {wanted}")


def build_stream_model(window_model, replacements: Optional[Dict[str, layers.Layer]] = None
                       ) -> "keras.Model":
    """The one-frame model sharing the window model's layers (and weights).

    Args:
        window_model: a built CausalMobileNet ``(B, L, D, D, C)`` -> ``(B, K)``.

    Returns:
        ``keras.Model`` named ``CausalMobileNet_stream`` with dict inputs
        ``{"frame": (B, D, D, C) float32 in [0, 1], **state}`` and dict outputs
        ``{"probabilities": (B, K) float32, **new_state}`` (the state names and
        shapes of :func:`stream_state_specs`). Feeding frames 1..L one by one from
        :func:`initial_stream_state` gives, after frame L, the window model's output.

        replacements: layers used instead of the window model's of the same name
            (export.py's int8 graph swaps the pooling, see
            ``coreLib.models.litert_layers``); a replacement with
            ``stream_state_shapes`` gives the shapes of its states.

    Raises:
        ActrecogError: not a CausalMobileNet window model.
    """
    specs = stream_state_specs(window_model)
    for replacement in (replacements or {}).values():
        for name, shape in getattr(replacement, "stream_state_shapes", {}).items():
            specs[name] = StateSpec(tuple(shape), "float32")
    _, image_dim, _, channels = window_model.input_shape[1:]
    frame = keras.Input((image_dim, image_dim, channels), name=FRAME_INPUT_NAME)
    state = {name: keras.Input(spec.shape, dtype=spec.dtype, name=name)
             for name, spec in specs.items()}
    # A one-frame window: every layer runs as in the window model.
    window = layers.Reshape((1, image_dim, image_dim, channels),
                            name="frame_as_window")(frame)
    source = _lookup(window_model, replacements)
    averages, new_state = _features(window, source, _bn_momentum_of(window_model), state)
    last = LastFrame(name="stream_last_frame")(averages)
    probabilities = _classifier(last, source, window_model.output_shape[-1])
    return keras.Model({FRAME_INPUT_NAME: frame, **state},
                       {OUTPUT_NAME: probabilities, **new_state},
                       name=CAUSAL_MOBILENET_NAME + STREAM_MODEL_SUFFIX)


def build_window_model_with(window_model, replacements: Dict[str, layers.Layer]
                            ) -> "keras.Model":
    """The window model with some layers replaced (the others, and their weights,
    shared): ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32, the classifier on
    the pooling's last row. export.py's int8 graph uses it with a pooling whose
    window form is one mean over frames and space.

    Raises:
        ActrecogError: not a CausalMobileNet window model.
    """
    _check_is_window_model(window_model)
    inputs = keras.Input(window_model.input_shape[1:], name="window")
    source = _lookup(window_model, replacements)
    averages, _ = _features(inputs, source, _bn_momentum_of(window_model))
    last = LastFrame(name="export_last_frame")(averages)
    outputs = _classifier(last, source, window_model.output_shape[-1])
    return keras.Model(inputs, outputs, name=CAUSAL_MOBILENET_NAME)


def build_per_frame_model(window_model) -> "keras.Model":
    """The window model with a prediction after every frame (same layers, weights).

    Returns:
        ``keras.Model`` ``(B, L, D, D, C)`` float32 -> ``(B, L, K)`` float32: row t
        is the classifier on the cumulative average at frame t (row L-1 is the
        window model's output).

    Raises:
        ActrecogError: not a CausalMobileNet window model.
    """
    _check_is_window_model(window_model)
    inputs = keras.Input(window_model.input_shape[1:], name="window")
    source = _lookup(window_model)
    averages, _ = _features(inputs, source, _bn_momentum_of(window_model))
    outputs = _classifier(averages, source, window_model.output_shape[-1])
    return keras.Model(inputs, outputs, name=CAUSAL_MOBILENET_NAME + PER_FRAME_MODEL_SUFFIX)
