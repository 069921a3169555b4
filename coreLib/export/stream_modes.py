"""Stream modes: one frame and the state in, probabilities and the new state out
(what the SavedModel's ``stream_step`` and the ``*_stream.tflite`` files run)."""

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

from coreLib.cli import import_tensorflow_quietly

import_tensorflow_quietly()

from keras import ops  # noqa: E402

from coreLib import models  # noqa: E402
from coreLib.models import streaming  # noqa: E402


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


def find_stream_mode(model_name: str, model,
                     replacements: Optional[Dict[str, object]] = None
                     ) -> Optional[StreamMode]:
    """The model's own stream mode, from its registry record's ``stream_model``
    (CausalMobileNet's ``coreLib.models.streaming.build_stream_model``: dict inputs
    ``frame`` + the states, dict outputs ``probabilities`` + the new states of the
    same names); None for a model without one.

    Args:
        model_name: the model's registry name (export.py's MODEL_NAME).
        model: its window model (rebuilt for LiteRT).
        replacements: layers swapped in by name (the int8 graph's, see
            :func:`int8_graph`).
    """
    build_stream_model = models.get_model_record(model_name).stream_model
    if build_stream_model is None:
        return None
    stream_model = build_stream_model(model, replacements)
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


def int8_graph(model_name: str, model, float_stream: Optional[StreamMode]) -> Int8Graph:
    """The export graph for int8: the model's registry record's ``int8_rewrite``
    (CausalMobileNet: ``coreLib.models.litert_layers.causal_mobilenet_int8_rewrite``)
    and the stream mode with the same replacements; a model without a rewrite as
    it is.

    Args:
        model_name: the model's registry name (export.py's MODEL_NAME).
        model: the model rebuilt for LiteRT.
        float_stream: the float export's stream mode (kept when nothing is rewritten).
    """
    rewrite = models.get_model_record(model_name).int8_rewrite
    graph = rewrite(model) if rewrite is not None else None
    if graph is None:
        return Int8Graph(model, float_stream, ())
    return Int8Graph(graph.window_model,
                     find_stream_mode(model_name, model, graph.replacements),
                     graph.descriptions)
