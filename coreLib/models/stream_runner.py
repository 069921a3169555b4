"""Running CausalMobileNet frame by frame: one compiled stream-model call per frame."""

from typing import Dict

import os

from coreLib.cli import import_tensorflow_quietly

# Only the TensorFlow backend needs TensorFlow (bench/gpu_models.py runs on JAX).
if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import_tensorflow_quietly()

import keras  # noqa: E402  (after the quiet TensorFlow import)
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from coreLib.errors import ActrecogError  # noqa: E402
from coreLib.models.streaming import (  # noqa: E402
    FRAME_INPUT_NAME, OUTPUT_NAME, build_stream_model, check_stream_state,
    initial_stream_state)


class StreamRunner:
    """Runs CausalMobileNet over frames as they arrive, one compiled call per frame.

    Holds the stream model, a compiled call of it (``tf.function`` under the
    TensorFlow backend, ``jax.jit`` via Keras under JAX) and the current state.
    The cost per frame is fixed: the state has the same size whatever the number
    of frames seen.

    Args:
        window_model: a (trained) CausalMobileNet window model.
        batch_size: number of independent streams fed together.
        compile: False runs the stream model eagerly (no tracing: quicker for a
            handful of frames, slower per frame).
    """

    def __init__(self, window_model, batch_size: int = 1, compile: bool = True):
        self.window_model = window_model
        self.batch_size = batch_size
        self.state = initial_stream_state(window_model, batch_size)  # checks both
        self.stream_model = build_stream_model(window_model)
        self.frame_shape = tuple(self.stream_model.input[FRAME_INPUT_NAME].shape[1:])
        if compile:
            self._call = self._compile(self.stream_model)
        else:
            self._call = lambda inputs: self.stream_model(
                {name: ops.convert_to_tensor(value) for name, value in inputs.items()},
                training=False)

    @staticmethod
    def _compile(stream_model):
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf  # the runner, not the model, needs it

            return tf.function(lambda inputs: stream_model(inputs, training=False),
                               reduce_retracing=True)
        return stream_model.predict_on_batch

    def reset(self) -> None:
        """Starts every stream afresh (the zero state: no frame seen)."""
        self.state = initial_stream_state(self.window_model, self.batch_size)

    def set_state(self, state: Dict[str, object]) -> None:
        """Continues from a saved state (e.g. ``runner.state`` of another runner).

        Raises:
            ActrecogError: a state entry of the wrong name or shape (named).
        """
        check_stream_state(self.window_model, state, self.batch_size)
        self.state = dict(state)

    def step(self, frames) -> np.ndarray:
        """Feeds one frame per stream.

        Args:
            frames: ``(B, D, D, C)`` float32 in [0, 1].

        Returns:
            ``(B, K)`` float32 probabilities given every frame fed since the last
            reset.

        Raises:
            ActrecogError: frames of the wrong shape.
        """
        shape = tuple(np.shape(frames))
        if shape != (self.batch_size,) + self.frame_shape:
            raise ActrecogError(f"stream frame: shape {shape}, expected "
                                f"{(self.batch_size,) + self.frame_shape}")
        outputs = self._call({FRAME_INPUT_NAME: frames, **self.state})
        self.state = {name: outputs[name] for name in self.state}
        return np.asarray(outputs[OUTPUT_NAME])

    def run(self, sequence) -> np.ndarray:
        """Feeds a whole sequence frame by frame.

        Args:
            sequence: ``(B, T, D, D, C)`` float32 in [0, 1].

        Returns:
            ``(B, T, K)`` float32: the probabilities after each frame.
        """
        sequence = np.asarray(sequence, dtype=np.float32)
        if sequence.ndim != 5:
            raise ActrecogError(f"stream sequence: shape {sequence.shape}, expected "
                                f"(B, T) + {self.frame_shape}")
        return np.stack([self.step(sequence[:, index])
                         for index in range(sequence.shape[1])], axis=1)
