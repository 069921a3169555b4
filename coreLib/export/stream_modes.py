"""Stream modes: one frame and the state in, probabilities and the new state out
(what the SavedModel's ``stream_step`` and the ``*_stream.tflite`` files run)."""

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

from coreLib.cli import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402  (after the quiet TensorFlow import)
from keras import ops  # noqa: E402

from coreLib.models import litert_layers, streaming  # noqa: E402


@dataclass(frozen=True)
class StreamMode:
    """A model's stream mode.

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


def find_stream_mode(model, replacements: Optional[Dict[str, object]] = None
                     ) -> Optional[StreamMode]:
    """The model's own stream mode: CausalMobileNet's
    ``coreLib.models.streaming.build_stream_model`` (dict inputs ``frame`` + the
    states of ``stream_state_specs``, dict outputs ``probabilities`` + the new
    states of the same names); None for every other model.

    Args:
        replacements: layers swapped in by name (the int8 graph's pooling).
    """
    if model.name != streaming.CAUSAL_MOBILENET_NAME:
        return None
    stream_model = streaming.build_stream_model(model, replacements)
    names = tuple(name for name in stream_model.input if name != streaming.FRAME_INPUT_NAME)
    shapes = {name: tuple(stream_model.input[name].shape[1:]) for name in names}
    dtypes = {name: stream_model.input[name].dtype for name in names}

    def step(frame, states):
        inputs = {streaming.FRAME_INPUT_NAME: frame}
        inputs.update({name: ops.cast(state, dtypes[name])
                       for name, state in zip(names, states)})
        outputs = stream_model(inputs, training=False)
        return (outputs[streaming.OUTPUT_NAME],
                [ops.cast(outputs[name], "float32") for name in names])

    return StreamMode(model.name, tuple(shapes[name] for name in names), step,
                      (stream_model,), names)


@dataclass(frozen=True)
class Int8Graph:
    """The graphs the int8 files are converted from (float32, same weights).

    Attributes:
        window_model: ``(B, L, D, D, C)`` float32 scaled -> ``(B, K)`` float32.
        stream_mode: the stream step to quantise, or None.
        rewrites: what differs from the float export graph (export.json).
    """
    window_model: object
    stream_mode: Optional[StreamMode]
    rewrites: Tuple[str, ...]


def int8_graph(model, float_stream: Optional[StreamMode]) -> Int8Graph:
    """The export graph for int8: CausalMobileNet's pooling becomes
    :class:`coreLib.models.litert_layers.IntegerBoxPooling` (no CUMSUM, SUM or
    DIV: every tensor keeps one range whatever the frames seen; the frame count
    state becomes a one-hot); other models as they are.

    Args:
        model: the model rebuilt for LiteRT.
        float_stream: the float export's stream mode (kept for other models).
    """
    if model.name != streaming.CAUSAL_MOBILENET_NAME:
        return Int8Graph(model, float_stream, ())
    horizon = int(model.input_shape[1])
    if horizon < 2:
        return Int8Graph(model, float_stream, ())
    replacements = {"pool": litert_layers.IntegerBoxPooling(horizon, name="pool")}
    rewrites = ["pool: IntegerBoxPooling (window: one MEAN over frames and space; stream: "
                "MEAN of the last L frame means times L/count, the count a one-hot state)"]
    for norm in model.layers:
        if not isinstance(norm, keras.layers.BatchNormalization):
            continue
        before = norm.input._keras_history.operation   # the layer that feeds the norm
        if isinstance(before, streaming.CausalTemporalConv):
            replacements[before.name] = litert_layers.FoldedTemporalConv(before, norm)
        elif isinstance(before, streaming.PerFrame) and isinstance(
                before.layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) \
                and not before.layer.use_bias:
            replacements[before.name] = litert_layers.folded_frame_conv(before, norm)
        else:
            continue
        replacements[norm.name] = keras.layers.Identity(name=norm.name)
        rewrites.append(f"{norm.name}: folded into {before.name}'s kernel and bias")
    return Int8Graph(streaming.build_window_model_with(model, replacements),
                     find_stream_mode(model, replacements), tuple(rewrites))
