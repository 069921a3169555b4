"""The Keras layers of CausalMobileNet (:mod:`coreLib.models.streaming`): per-frame
2-D layers, the causal temporal convolution, causal cumulative average pooling,
and the last frame of a sequence.

The stateful layers work on a window ``(B, T, ...)`` from its first frame, or on
frames together with their state (the stream model). Registered for Keras
serialization under the package ``pyACTRECOG``. Only Keras layers and
``keras.ops``: they also run under ``KERAS_BACKEND=jax``.
"""

import os

from coreLib.cli import import_tensorflow_quietly

# Only the TensorFlow backend needs TensorFlow (bench/gpu_models.py runs on JAX).
if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import_tensorflow_quietly()

import keras  # noqa: E402  (after the quiet TensorFlow import)
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

from coreLib.errors import ActrecogError  # noqa: E402

# Frames t-1 and t. Five such convolutions give each frame's features a reach of
# 6 frames, the window's length; 3-frame kernels reached 11, frames a 6-frame
# training window never holds but a stream does. On the held-out subject's
# sequences the 2-frame kernels label online 3-5 points more frames correctly
# (trajectory, two seeds) and 1 more (pose), with window accuracy level, half the
# stream state and fewer parameters (docs/training.md, issue 19's third round).
TEMPORAL_KERNEL = 2


def _is_shape_list(input_shape) -> bool:
    """Whether Keras passed build() the shapes of a list of inputs."""
    return (isinstance(input_shape, (list, tuple)) and len(input_shape) > 0
            and isinstance(input_shape[0], (list, tuple)))


@keras.saving.register_keras_serializable(package="pyACTRECOG")
class PerFrame(layers.Wrapper):
    """Applies a 2-D layer to every frame: ``(B, T, H, W, C)`` -> ``(B, T, H', W', C')``.

    Folds time into the batch (one call on ``B * T`` images) rather than looping
    over frames as ``TimeDistributed`` does, so the per-frame convolutions run as
    one large convolution.
    """

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build((None,) + tuple(input_shape[2:]))
        self.built = True

    def compute_output_shape(self, input_shape):
        frame_shape = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(frame_shape[1:])

    def call(self, inputs, training=None):
        frames = inputs.shape[1]
        folded = ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))
        outputs = self.layer(folded, training=training)
        return ops.reshape(outputs, (-1, frames) + tuple(outputs.shape[1:]))


@keras.saving.register_keras_serializable(package="pyACTRECOG")
class CausalTemporalConv(layers.Layer):
    """Causal depthwise convolution over time: ``y_t = sum_j kernel[j] * x_(t-k+1+j)``.

    Each channel has its own ``k`` taps (kernel ``(k, C)``, no bias: a BatchNorm
    follows). Frames before the first are zeros (left padding only), so ``y_t``
    depends on frames ``t-k+1 .. t``.

    Call with a window ``(B, T, ..., C)`` (no history: zeros before it), or with
    ``[window, buffer]``, buffer ``(B, k-1, ..., C)`` the k-1 frames before the
    window. Returns ``[outputs (B, T, ..., C), new_buffer (B, k-1, ..., C)]``, the
    new buffer being the last k-1 frames of history + window: what the next call
    needs to continue the sequence. (Both calls return the same structure: Keras
    checks a layer's outputs against its first call's.)
    """

    def __init__(self, kernel_size: int = TEMPORAL_KERNEL, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(kernel_size, int) or kernel_size < 2:
            raise ActrecogError(f"{self.name}: kernel_size must be an integer >= 2, "
                                f"got {kernel_size!r}")
        self.kernel_size = kernel_size

    def build(self, input_shape):
        window_shape = input_shape[0] if _is_shape_list(input_shape) else input_shape
        # fan_in = k for a (k, C) kernel: unit gain per channel.
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, window_shape[-1]),
            initializer=keras.initializers.VarianceScaling(1.0, "fan_in",
                                                           "truncated_normal"))
        self.built = True

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            window, buffer = inputs
            window_shape = tuple(window.shape)
            # The k-1 remembered frames and the new ones: 'valid' taps see exactly
            # frames t-k+1 .. t for every new frame t.
            padded = ops.concatenate([ops.cast(buffer, window.dtype), window], axis=1)
            outputs = ops.depthwise_conv(self._as_rows(padded),
                                         self._taps(self.kernel, window.dtype),
                                         padding="valid")
            return [ops.reshape(outputs, (-1,) + window_shape[1:]),
                    padded[:, window_shape[1]:]]
        window_shape = tuple(inputs.shape)
        history, frames = self.kernel_size - 1, window_shape[1]
        # No history: 'same' padding of a 2k-1 tap kernel whose last k-1 taps are 0
        # zero-pads k-1 frames on the left and ignores those on the right, without
        # the copy an explicit pad makes (3x slower on CPU).
        kernel = self._taps(self.kernel, inputs.dtype)
        future = ops.zeros((history,) + tuple(kernel.shape[1:]), kernel.dtype)
        outputs = ops.depthwise_conv(self._as_rows(inputs),
                                     ops.concatenate([kernel, future], axis=0),
                                     padding="same")
        if frames >= history:
            buffer = inputs[:, frames - history:]
        else:   # fewer frames than the buffer holds: zeros before the first
            padding = [[0, 0], [history - frames, 0]] + [[0, 0]] * (len(window_shape) - 2)
            buffer = ops.pad(inputs, padding)
        return [ops.reshape(outputs, (-1,) + window_shape[1:]), buffer]

    @staticmethod
    def _as_rows(window):
        """``(B, T, ..., C)`` -> ``(B, T, positions, C)``: time as the image rows."""
        return ops.reshape(window, (-1, window.shape[1],
                                    int(np.prod(window.shape[2:-1])), window.shape[-1]))

    @staticmethod
    def _taps(kernel, dtype):
        """``(k, C)`` -> the depthwise kernel ``(k, 1, C, 1)`` over (time, positions)."""
        return ops.reshape(ops.cast(kernel, dtype), (kernel.shape[0], 1, kernel.shape[1], 1))

    def compute_output_shape(self, input_shape):
        window_shape = input_shape[0] if _is_shape_list(input_shape) else input_shape
        window_shape = tuple(window_shape)
        return [window_shape,
                (window_shape[0], self.kernel_size - 1) + window_shape[2:]]

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="pyACTRECOG")
class CumulativeAveragePooling(layers.Layer):
    """Causal global average pooling: the mean over space and over frames 1..t,
    and in an endless stream over the last ``horizon`` frames.

    Call with a window ``(B, T, H, W, C)`` (nothing seen before it; T <= horizon),
    or with ``[window, history (B, M, C), frame_count (B, 1)]``: the state after
    the frames seen so far, ``M = max(horizon - 1, 1)``. Returns ``[averages
    (B, T, C), new_history, new_count]``. Row t of averages is the mean of the
    spatial means of the last ``min(t + 1, horizon)`` frames: for a window of
    L = horizon frames that is the cumulative average, and past L frames a box
    average over the last L - exactly what the classifier was trained on, for
    the window ending at the current frame. (A cumulative mean over an endless
    stream would let the first minutes outweigh the action now in view; an
    exponential average over about L frames lags twice as far behind the action
    as the box.) ``history`` holds the spatial means of the last M frames, the
    newest last, zeros for frames not seen; ``frame_count`` is the frames seen,
    capped at ``horizon``. Built float32 so that long streams keep their precision.

    Args:
        horizon: the frames averaged (the model's window length L).
    """

    def __init__(self, horizon: int, **kwargs):
        super().__init__(**kwargs)
        self.horizon = int(horizon)

    @property
    def history_length(self) -> int:
        """M: frames of spatial means the stream state keeps (at least one)."""
        return max(self.horizon - 1, 1)

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            window, history, frame_count = inputs
        else:
            window, history, frame_count = inputs, None, None
        frame_means = ops.mean(window, axis=tuple(range(2, len(window.shape) - 1)))
        frames = window.shape[1]
        kept = self.horizon - 1   # earlier frames that join the current one
        if history is None:   # a window from its first frame: T <= horizon
            sums = ops.cumsum(frame_means, axis=1)
            counts = ops.reshape(ops.arange(1, frames + 1, dtype=frame_means.dtype),
                                 (1, frames, 1))
            counts = ops.zeros_like(sums[:, :, :1]) + counts   # one count per stream
            padding = ops.zeros_like(frame_means[:, :1]) * ops.zeros(
                (1, self.history_length, 1), frame_means.dtype)
            history = ops.concatenate([padding, frame_means], axis=1)[
                :, -self.history_length:]
            return [sums / counts, history, counts[:, -1]]
        averages = []
        count = frame_count
        for index in range(frames):   # T is 1 in the stream model
            current = frame_means[:, index]
            total = current + ops.sum(history, axis=1) if kept else current
            count = ops.minimum(count + 1.0, float(self.horizon))
            averages.append(total / count)
            history = ops.concatenate([history[:, 1:], current[:, None]], axis=1)
        return [ops.stack(averages, axis=1), history, count]

    def compute_output_shape(self, input_shape):
        window_shape = input_shape[0] if _is_shape_list(input_shape) else input_shape
        batch, frames, channels = window_shape[0], window_shape[1], window_shape[-1]
        return [(batch, frames, channels), (batch, self.history_length, channels),
                (batch, 1)]

    def get_config(self):
        return {**super().get_config(), "horizon": self.horizon}


@keras.saving.register_keras_serializable(package="pyACTRECOG")
class LastFrame(layers.Layer):
    """``(B, T, F)`` -> ``(B, F)``: the row of the last frame."""

    def call(self, inputs):
        return inputs[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])
