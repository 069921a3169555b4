"""ConvNet3D, LRCN and DUMMY: the 2019 tool's three Keras models, as functional models;
and the registry (:data:`MODEL_RECORDS`, one :class:`ModelRecord` per model) that
also holds CausalMobileNet (coreLib/models/streaming.py).

Every builder takes the window shape from the manifest, ``(seq_len, image_dim,
image_dim, channels)``, and the number of classes, and returns an uncompiled
``keras.Model`` whose input is ``(B, L, D, D, C)`` float32 in [0, 1] and whose output
is ``(B, num_classes)`` float32 class probabilities.

The last Dense layer (softmax) is always float32, so a mixed-precision policy set
by the trainer before building (``mixed_bfloat16`` / ``mixed_float16``) still gives
float32 probabilities and a numerically safe cross-entropy.

Layer names are spelled out (``block2_conv1``, ...) rather than left to Keras'
global counters, so the same model always has the same layer names (summaries,
drawings and weight files do not depend on what was built before).
"""

import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from coreLib.cli import import_tensorflow_quietly
from coreLib.errors import ActrecogError

# Only the TensorFlow backend needs TensorFlow (bench/gpu_models.py runs on JAX).
if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import_tensorflow_quietly()

import keras  # noqa: E402  (after the quiet TensorFlow import)
from keras import layers  # noqa: E402

from coreLib.models import litert_layers, streaming  # noqa: E402
from coreLib.models.stream_runner import StreamRunner  # noqa: E402
from coreLib.models.constants import BN_MOMENTUM, DROPOUT_RATE, L2_FACTOR  # noqa: E402,F401


CONVNET3D_NAME = "ConvNet3D"
LRCN_NAME = "LRCN"
DUMMY_NAME = "DUMMY"
# Every model's last layer: its bias has one value per class (weights checks).
OUTPUT_LAYER_NAME = "probabilities"

# ConvNet3D after C3D: one 64-filter conv, then two convs per block.
CONVNET3D_BLOCK_FILTERS = (128, 256, 512, 512)
CONVNET3D_POOL = (1, 2, 2)
CONVNET3D_DENSE_UNITS = (4096, 4096)
# LRCN after Donahue et al.: three strided conv blocks, a stack of LSTMs, small MLP.
LRCN_CONV_FILTERS = (128, 256, 512)
LRCN_CONV_STRIDE = 2
LRCN_POOL = 2
LRCN_LSTM_UNITS = (256, 128, 64, 32)
LRCN_DENSE_UNITS = (28, 24)
DUMMY_FILTERS = 8


def _check_shape(name: str, seq_len: int, image_dim: int, channels: int,
                 num_classes: int) -> None:
    for arg, value in (("seq_len", seq_len), ("image_dim", image_dim),
                       ("channels", channels)):
        if not isinstance(value, int) or value < 1:
            raise ActrecogError(f"{name}: {arg} must be a positive integer, got {value!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ActrecogError(f"{name}: num_classes must be an integer >= 2, "
                            f"got {num_classes!r}")


def _lrcn_output_side(image_dim: int) -> int:
    side = image_dim
    for _ in LRCN_CONV_FILTERS:
        side = -(-side // LRCN_CONV_STRIDE)   # 'same' strided conv: ceil
        side //= LRCN_POOL                     # 'valid' pool: floor
    return side


def lrcn_min_image_dim() -> int:
    """Smallest frame side for LRCN (three strided convs and pools leave >= 1 pixel)."""
    image_dim = 1
    while _lrcn_output_side(image_dim) < 1:
        image_dim += 1
    return image_dim


def _classifier_head(x, dense_units: Tuple[int, ...], num_classes: int):
    """Dense relu + Dropout per entry of ``dense_units``, then a float32 softmax.

    Args:
        x: ``(B, F)`` features.

    Returns:
        ``(B, num_classes)`` float32 probabilities (float32 even under a
        mixed-precision policy).
    """
    for index, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{index}")(x)
        x = layers.Dropout(DROPOUT_RATE, name=f"fc{index}_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32",
                        name=OUTPUT_LAYER_NAME)(x)


def build_convnet3d(seq_len: int, image_dim: int, channels: int,
                    num_classes: int, bn_momentum: float = BN_MOMENTUM) -> "keras.Model":
    """ConvNet3D (after C3D, Tran et al. 2015), as the 2019 tool built it.

    Conv3D 64 -> MaxPool3D (1,2,2) -> ReLU -> BatchNorm; for 128, 256, 512, 512
    filters: two Conv3D -> MaxPool3D (1,2,2) -> ReLU -> BatchNorm; Flatten ->
    Dense 4096 relu -> Dropout -> Dense 4096 relu -> Dropout -> Dense softmax.
    Every Conv3D is 3x3x3, 'same', relu, with an L2 1e-4 kernel penalty; pooling
    pads 'same' (identical to 'valid' at 64x64, and any image_dim builds).
    95,291,025 parameters at (6, 64, 64, 3, 17 classes).

    Args:
        seq_len: frames per window L.
        image_dim: frame side D (any; 64 in the original).
        channels: C.
        num_classes: output classes.
        bn_momentum: momentum of the BatchNorm moving statistics.

    Returns:
        ``keras.Model`` named ``ConvNet3D``: ``(B, L, D, D, C)`` float32 ->
        ``(B, num_classes)`` float32.

    Raises:
        ActrecogError: a non-positive size.
    """
    _check_shape(CONVNET3D_NAME, seq_len, image_dim, channels, num_classes)

    def conv(filters: int, name: str):
        return layers.Conv3D(filters, (3, 3, 3), padding="same", activation="relu",
                             kernel_regularizer=keras.regularizers.L2(L2_FACTOR),
                             name=name)

    def pool_relu_norm(x, block: int):
        # 'same' pooling equals the original's 'valid' at its 64x64 input (every
        # pooled side is even there) and also lets smaller frames through (the
        # demo trains at 16x16, where 'valid' would shrink a side to zero).
        x = layers.MaxPooling3D(CONVNET3D_POOL, padding="same",
                                name=f"block{block}_pool")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
        return layers.BatchNormalization(momentum=bn_momentum,
                                         name=f"block{block}_norm")(x)

    inputs = keras.Input((seq_len, image_dim, image_dim, channels), name="window")
    x = conv(64, "block1_conv1")(inputs)
    x = pool_relu_norm(x, 1)
    for block, filters in enumerate(CONVNET3D_BLOCK_FILTERS, start=2):
        x = conv(filters, f"block{block}_conv1")(x)
        x = conv(filters, f"block{block}_conv2")(x)
        x = pool_relu_norm(x, block)
    x = layers.Flatten(name="flatten")(x)
    outputs = _classifier_head(x, CONVNET3D_DENSE_UNITS, num_classes)
    return keras.Model(inputs, outputs, name=CONVNET3D_NAME)


def build_lrcn(seq_len: int, image_dim: int, channels: int,
               num_classes: int, bn_momentum: float = BN_MOMENTUM) -> "keras.Model":
    """LRCN (after Donahue et al. 2015), as the 2019 tool built it.

    For 128, 256, 512 filters: TimeDistributed Conv2D (3x3, stride 2, 'same', L2
    1e-4) -> TD MaxPool2D 2 -> TD ReLU -> BatchNorm (over the whole sequence, not
    time-distributed); TD Flatten; LSTM 256, 128, 64 (return sequences), LSTM 32;
    Dense 28 relu -> Dropout -> Dense 24 relu -> Dropout -> Dense softmax.
    2,530,941 parameters at (6, 64, 64, 3, 17 classes).

    Args:
        seq_len: frames per window L.
        image_dim: frame side D (>= :func:`lrcn_min_image_dim`, 43).
        channels: C.
        num_classes: output classes.
        bn_momentum: momentum of the BatchNorm moving statistics.

    Returns:
        ``keras.Model`` named ``LRCN``: ``(B, L, D, D, C)`` float32 ->
        ``(B, num_classes)`` float32.

    Raises:
        ActrecogError: a non-positive size, or ``image_dim`` below the minimum.
    """
    _check_shape(LRCN_NAME, seq_len, image_dim, channels, num_classes)
    minimum = lrcn_min_image_dim()
    if image_dim < minimum:
        raise ActrecogError(f"{LRCN_NAME}: image_dim {image_dim} is too small; its three "
                            f"stride-2 convolutions and 2x2 poolings need image_dim >= "
                            f"{minimum}")

    inputs = keras.Input((seq_len, image_dim, image_dim, channels), name="window")
    x = inputs
    for block, filters in enumerate(LRCN_CONV_FILTERS, start=1):
        x = layers.TimeDistributed(
            layers.Conv2D(filters, (3, 3), strides=LRCN_CONV_STRIDE, padding="same",
                          kernel_regularizer=keras.regularizers.L2(L2_FACTOR)),
            name=f"block{block}_conv")(x)
        x = layers.TimeDistributed(layers.MaxPooling2D(LRCN_POOL),
                                   name=f"block{block}_pool")(x)
        x = layers.TimeDistributed(layers.ReLU(), name=f"block{block}_relu")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"block{block}_norm")(x)
    x = layers.TimeDistributed(layers.Flatten(), name="flatten")(x)
    for index, units in enumerate(LRCN_LSTM_UNITS, start=1):
        last = index == len(LRCN_LSTM_UNITS)
        x = layers.LSTM(units, return_sequences=not last, name=f"lstm{index}")(x)
    outputs = _classifier_head(x, LRCN_DENSE_UNITS, num_classes)
    return keras.Model(inputs, outputs, name=LRCN_NAME)


def lrcn_frame_and_head(model, window_shape) -> Tuple["keras.Model", "keras.Model"]:
    """LRCN cut where frames first meet: a per-frame model and the LSTM head.

    LRCN's convolutions, poolings, ReLUs and (at inference: a per-channel affine
    map) BatchNorms act on each frame alone; only its LSTMs mix the frames of a
    window. Both parts are the model's own layers (and weights).

    Args:
        model: a built LRCN (the layer names of :func:`build_lrcn`).
        window_shape: ``(L, D, D, C)``.

    Returns:
        ``(frame_model, head_model)``: ``(B, 1, D, D, C)`` float32 -> ``(B, 1, F)``
        features, and ``(B, L, F)`` float32 -> ``(B, K)`` float32.
    """
    seq_len, image_dim, _, channels = window_shape
    # Frames enter as a batch of one-frame sequences: the layers are the
    # model's own (TimeDistributed and 5-D BatchNorm as built).
    frames_in = keras.Input((1, image_dim, image_dim, channels))
    x = frames_in
    for block in range(1, len(LRCN_CONV_FILTERS) + 1):
        for part in ("conv", "pool", "relu", "norm"):
            x = model.get_layer(f"block{block}_{part}")(x)
    x = model.get_layer("flatten")(x)
    features_in = keras.Input((seq_len, int(x.shape[-1])))
    y = features_in
    for index in range(1, len(LRCN_LSTM_UNITS) + 1):
        y = model.get_layer(f"lstm{index}")(y)
    for index in range(1, len(LRCN_DENSE_UNITS) + 1):
        y = model.get_layer(f"fc{index}_dropout")(model.get_layer(f"fc{index}")(y))
    y = model.get_layer(OUTPUT_LAYER_NAME)(y)
    return keras.Model(frames_in, x), keras.Model(features_in, y)


def build_dummy(seq_len: int, image_dim: int, channels: int,
                num_classes: int, bn_momentum: float = BN_MOMENTUM) -> "keras.Model":
    """DUMMY (debugging only): Conv3D 8 (3x3x3, 'same', relu) -> Flatten -> softmax.

    Args:
        seq_len, image_dim, channels: the window shape ``(L, D, D, C)``.
        num_classes: output classes.
        bn_momentum: unused (DUMMY has no BatchNorm); accepted like the others.

    Returns:
        ``keras.Model`` named ``DUMMY``: ``(B, L, D, D, C)`` float32 ->
        ``(B, num_classes)`` float32.
    """
    _check_shape(DUMMY_NAME, seq_len, image_dim, channels, num_classes)
    inputs = keras.Input((seq_len, image_dim, image_dim, channels), name="window")
    x = layers.Conv3D(DUMMY_FILTERS, (3, 3, 3), padding="same", activation="relu",
                      name="conv")(inputs)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32",
                           name=OUTPUT_LAYER_NAME)(x)
    return keras.Model(inputs, outputs, name=DUMMY_NAME)


ModelBuilder = Callable[..., "keras.Model"]


@dataclass(frozen=True)
class ModelRecord:
    """Everything the tools need to know about one model, in one place.

    Attributes:
        name: the model name (train.py MODEL_NAME, the Keras model's name).
        builder: ``builder(seq_len, image_dim, channels, num_classes,
            bn_momentum=...)`` -> uncompiled ``keras.Model``, ``(B, L, D, D, C)``
            float32 -> ``(B, K)`` float32.
        default_peak_step: train.py's default peak Adam step (``--lr``).
        min_image_dim: the smallest frame side D it builds with.
        stream_runner: for a streaming model, ``stream_runner(window_model)`` ->
            an object with ``step(frames)`` and ``state`` (online detection runs it
            frame by frame); None: the windows run through a window runner.
        stream_model: for a model with its own stream mode,
            ``stream_model(window_model, replacements=None)`` -> the one-frame
            ``keras.Model`` sharing its layers (dict inputs ``frame`` + states,
            dict outputs ``probabilities`` + new states; see
            ``streaming.build_stream_model``) that export.py writes as
            ``stream_step``; None: export.py's window buffer (``--window-stream``).
        int8_rewrite: ``int8_rewrite(window_model)`` -> a
            :class:`coreLib.models.litert_layers.GraphRewrite` (the layers
            export.py swaps in for its full-integer files, and why) or None;
            None: the int8 files are converted from the model as it is.
        frame_split: for a model whose first layers see one frame at a time,
            ``frame_split(model, window_shape)`` -> ``(frame_model, head_model)``
            (see :func:`lrcn_frame_and_head`): detection then computes each
            frame's features once; None: every window runs whole.
    """
    name: str
    builder: ModelBuilder
    default_peak_step: float
    min_image_dim: int = 1
    stream_runner: Optional[Callable] = None
    stream_model: Optional[Callable] = None
    int8_rewrite: Optional[Callable] = None
    frame_split: Optional[Callable] = None


# Peak Adam step of train.py's default schedule (linear warm-up, then cosine to 0).
# The 95 M-parameter ConvNet3D diverges above ~5e-4 (measured in the demo's probes:
# 1e-4 > 2e-4 > 5e-4 > 1e-3 at a constant step). CausalMobileNet (BatchNorm after
# every convolution, a short warm-up) takes a large step: in the demo's 1,200 steps
# 2e-3 / 4e-3 / 6e-3 gave 86.8 / 90.9 / 92.5 % on the trajectory family's unseen
# subjects and 98.7 / 98.5 / 99.1 % on the pose family's (README "Training recipe").
MODEL_RECORDS: Dict[str, ModelRecord] = {record.name: record for record in (
    ModelRecord(CONVNET3D_NAME, build_convnet3d, 2e-4),
    ModelRecord(LRCN_NAME, build_lrcn, 1e-3, min_image_dim=lrcn_min_image_dim(),
                frame_split=lrcn_frame_and_head),
    ModelRecord(DUMMY_NAME, build_dummy, 1e-3),
    ModelRecord(streaming.CAUSAL_MOBILENET_NAME, streaming.build_causal_mobilenet, 6e-3,
                min_image_dim=streaming.MIN_IMAGE_DIM, stream_runner=StreamRunner,
                stream_model=streaming.build_stream_model,
                int8_rewrite=litert_layers.causal_mobilenet_int8_rewrite),
)}
MODEL_NAMES: Tuple[str, ...] = tuple(MODEL_RECORDS)
# Views of the records, for their readers.
MODEL_BUILDERS: Dict[str, ModelBuilder] = {
    name: record.builder for name, record in MODEL_RECORDS.items()}
DEFAULT_LEARNING_RATES: Dict[str, float] = {
    name: record.default_peak_step for name, record in MODEL_RECORDS.items()}


def get_model_record(name: str) -> ModelRecord:
    """The record of a model name.

    Raises:
        ActrecogError: an unknown name (the message lists the valid ones).
    """
    try:
        return MODEL_RECORDS[name]
    except (KeyError, TypeError):
        raise ActrecogError(f"unknown model name {name!r}; valid names: "
                            f"{', '.join(MODEL_NAMES)}") from None


def get_model_builder(name: str) -> ModelBuilder:
    """The builder of a model name.

    Raises:
        ActrecogError: an unknown name (the message lists the valid ones).
    """
    return get_model_record(name).builder


def build_model(name: str, seq_len: int, image_dim: int, channels: int,
                num_classes: int, bn_momentum: float = BN_MOMENTUM) -> "keras.Model":
    """Builds a model by name (``ConvNet3D``, ``LRCN``, ``DUMMY``, ``CausalMobileNet``).

    Args:
        name: model name, exactly as in :data:`MODEL_NAMES`.
        seq_len, image_dim, channels: the window shape ``(L, D, D, C)``.
        num_classes: output classes.
        bn_momentum: momentum of the BatchNorm moving statistics (in (0, 1)).

    Returns:
        An uncompiled ``keras.Model``: ``(B, L, D, D, C)`` float32 ->
        ``(B, num_classes)`` float32 probabilities.

    Raises:
        ActrecogError: unknown name, or a window too small for the architecture.
    """
    builder = get_model_builder(name)
    if not isinstance(bn_momentum, (int, float)) or not 0 < bn_momentum < 1:
        raise ActrecogError(f"{name}: bn_momentum must be between 0 and 1, "
                            f"got {bn_momentum!r}")
    return builder(seq_len, image_dim, channels, num_classes, bn_momentum=bn_momentum)
