"""Keras layers that export.py builds for LiteRT files: same weights, same outputs,
graphs made of kernels LiteRT (and its integer runtimes) provide.

* :class:`FramewiseConv3D`: a stride-1 Conv3D as a sum of CONV_2D of the frames.
* :class:`IntegerBoxPooling`: CausalMobileNet's causal pooling
  (``streaming.CumulativeAveragePooling``) without CUMSUM, SUM or DIV, so that
  every tensor of the int8 files has one fixed range.
* BatchNorms folded into the convolution before them
  (:func:`folded_frame_conv`, :class:`FoldedTemporalConv`).
* :func:`causal_mobilenet_int8_rewrite`: CausalMobileNet's record's
  ``int8_rewrite``, all of the above as one :class:`GraphRewrite`.
"""

import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from coreLib.cli import import_tensorflow_quietly

# Only the TensorFlow backend needs TensorFlow (bench/gpu_models.py runs on JAX).
if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import_tensorflow_quietly()

import keras  # noqa: E402  (after the quiet TensorFlow import)
from keras import ops  # noqa: E402

from coreLib.models import streaming  # noqa: E402


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


class IntegerBoxPooling(keras.layers.Layer):
    """CausalMobileNet's pooling (the mean over space and over the last
    ``min(t, horizon)`` frames) in ops that quantise to int8 with fixed ranges.

    The float layer divides a running sum by a frame count (DIV) and, in its
    window form, takes a cumulative sum over frames (CUMSUM): neither has an int8
    kernel in every runtime, and a sum's range grows with the frames summed.
    Here:

    * window form, ``(B, T, H, W, C)`` with ``T == horizon``: one MEAN over
      frames and space, shape ``(B, 1, C)`` (the float layer's last row is that
      mean: the classifier only reads the last row);
    * stream form, ``[frame (B, 1, H, W, C), history (B, M, C), seen (B, horizon)]``:
      ``history`` as the float layer's (the last M = horizon - 1 spatial means,
      newest last), ``seen`` a one-hot of the frames seen (capped at horizon)
      instead of the float count. The average is the MEAN of history and the new
      frame (range of one mean, whatever the frame count) times
      ``horizon / count``, read from the one-hot by a FULLY_CONNECTED; the
      one-hot moves on by another (a constant shift matrix). No DIV, no SUM.

    Returns what the float layer returns: ``[averages, new_history, new_seen]``.
    """

    def __init__(self, horizon: int, **kwargs):
        super().__init__(**kwargs)
        self.horizon = int(horizon)
        if self.horizon < 2:
            raise ValueError(f"horizon must be >= 2, got {self.horizon}")

    @property
    def stream_state_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """The pool states' per-example shapes by the float layer's state names."""
        return {streaming.POOL_HISTORY_NAME: (self.horizon - 1, self.channels),
                streaming.POOL_COUNT_NAME: (self.horizon,)}

    def build(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape, (list, tuple)) and isinstance(
            input_shape[0], (list, tuple)) else input_shape
        self.channels = int(shape[-1])
        self.built = True

    def _constants(self):
        """``(shift (h, h), first (h,), scale (h, 1))``: ``seen' = seen @ shift + first``
        moves the one-hot on (capped at the last slot; all zeros -> slot 0) and
        ``seen @ scale`` is horizon / count."""
        horizon = self.horizon
        shift = np.zeros((horizon, horizon), np.float32)
        shift[:, 0] = -1.0                      # slot 0 lit only when nothing was seen
        for slot in range(horizon - 1):
            shift[slot, slot + 1] = 1.0
        shift[horizon - 1, horizon - 1] = 1.0   # the cap
        first = np.zeros((horizon,), np.float32)
        first[0] = 1.0
        scale = (horizon / np.arange(1, horizon + 1, dtype=np.float32))[:, None]
        return shift, first, scale

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            means = ops.mean(inputs, axis=tuple(range(1, len(inputs.shape) - 1)))
            zeros = ops.zeros_like(means[:, :1])
            return [means[:, None], zeros, zeros]
        window, history, seen = inputs
        current = ops.mean(window, axis=tuple(range(2, len(window.shape) - 1)))  # (B, 1, C)
        last_frames = ops.concatenate([history, current], axis=1)               # (B, h, C)
        shift, first, scale = self._constants()
        new_seen = ops.matmul(seen, shift) + first
        factor = ops.matmul(new_seen, scale)                                     # (B, 1)
        averages = ops.mean(last_frames, axis=1) * factor
        return [averages[:, None], last_frames[:, 1:], new_seen]

    def get_config(self):
        return {**super().get_config(), "horizon": self.horizon}


def norm_factors(norm) -> Tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)`` of an inference BatchNormalization: ``y = x * scale + shift``."""
    gamma = np.asarray(norm.gamma) if norm.scale else 1.0
    beta = np.asarray(norm.beta) if norm.center else 0.0
    scale = gamma / np.sqrt(np.asarray(norm.moving_variance) + norm.epsilon)
    return scale.astype(np.float32), (beta - np.asarray(norm.moving_mean) * scale).astype(
        np.float32)


def folded_frame_conv(per_frame, norm):
    """A ``streaming.PerFrame`` Conv2D / DepthwiseConv2D without bias and the
    BatchNormalization after it, as one PerFrame convolution with the norm folded
    into its kernel and a bias (same outputs to float rounding). TFLite folds a
    norm into the convolution before it only when nothing stands between them; the
    PerFrame reshape does, so the unfolded norm would cost an int8 MUL and ADD.
    """
    inner = per_frame.layer
    scale, shift = norm_factors(norm)
    config = inner.get_config()
    config["use_bias"] = True
    folded = inner.__class__.from_config(config)
    folded.build((None,) + tuple(per_frame.input.shape[2:]))
    kernel = np.asarray(inner.kernel)
    if isinstance(inner, keras.layers.DepthwiseConv2D):
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])[None, None]
    else:
        kernel = kernel * scale
    folded.set_weights([kernel.astype(np.float32), shift])
    return streaming.PerFrame(folded, name=per_frame.name)


class FoldedTemporalConv(keras.layers.Layer):
    """CausalMobileNet's causal temporal depthwise convolution with the BatchNorm
    after it folded in: kernel ``k[j, c] * s_c`` and bias ``b_c`` with ``s =
    gamma / sqrt(var + eps)``, ``b = beta - mean * s``. The same outputs as the
    two layers (to float rounding); in an int8 file the bias joins the
    DEPTHWISE_CONV_2D kernel, where the unfolded norm costs a MUL and an ADD,
    each rounding to int8 once more.

    Calls and returns as ``streaming.CausalTemporalConv``.
    """

    def __init__(self, temporal, norm, **kwargs):
        super().__init__(name=temporal.name, **kwargs)
        self.kernel_size = temporal.kernel_size
        scale, self._bias = norm_factors(norm)
        self._kernel = (np.asarray(temporal.kernel) * scale).astype(np.float32)

    def _conv(self, rows, kernel, padding):
        taps = ops.reshape(kernel, (kernel.shape[0], 1, kernel.shape[1], 1))
        return ops.depthwise_conv(rows, taps, padding=padding) + self._bias

    @staticmethod
    def _as_rows(window):
        return ops.reshape(window, (-1, window.shape[1],
                                    int(np.prod(window.shape[2:-1])), window.shape[-1]))

    def call(self, inputs):
        kernel = ops.convert_to_tensor(self._kernel)
        if isinstance(inputs, (list, tuple)):
            window, buffer = inputs
            padded = ops.concatenate([ops.cast(buffer, window.dtype), window], axis=1)
            outputs = self._conv(self._as_rows(padded), kernel, "valid")
            return [ops.reshape(outputs, (-1,) + tuple(window.shape[1:])),
                    padded[:, window.shape[1]:]]
        history, frames = self.kernel_size - 1, inputs.shape[1]
        future = ops.zeros((history,) + tuple(kernel.shape[1:]), kernel.dtype)
        outputs = self._conv(self._as_rows(inputs), ops.concatenate([kernel, future], axis=0),
                             "same")
        buffer = inputs[:, frames - history:] if frames >= history else ops.pad(
            inputs, [[0, 0], [history - frames, 0]] + [[0, 0]] * (len(inputs.shape) - 2))
        return [ops.reshape(outputs, (-1,) + tuple(inputs.shape[1:])), buffer]


@dataclass(frozen=True)
class GraphRewrite:
    """A model's graph for the full-integer files (float32, the same weights).

    Attributes:
        window_model: ``(B, L, D, D, C)`` float32 scaled -> ``(B, K)`` float32,
            with the replacements.
        replacements: layer name -> the layer used instead (its stream model
            takes them too).
        descriptions: what differs from the float export graph, one line a
            rewrite (export.json's ``graph_rewrites``).
    """
    window_model: object
    replacements: Dict[str, object]
    descriptions: Tuple[str, ...]


def causal_mobilenet_int8_rewrite(model) -> Optional[GraphRewrite]:
    """CausalMobileNet's int8 graph: the pooling becomes :class:`IntegerBoxPooling`
    (no CUMSUM, SUM or DIV: every tensor keeps one range whatever the frames seen;
    the frame count state becomes a one-hot) and every BatchNorm after a
    convolution is folded into it.

    Args:
        model: a CausalMobileNet window model (rebuilt for LiteRT).

    Returns:
        The rewrite; None for a window of one frame (nothing to pool over time).
    """
    horizon = int(model.input_shape[1])
    if horizon < 2:
        return None
    replacements = {"pool": IntegerBoxPooling(horizon, name="pool")}
    rewrites = ["pool: IntegerBoxPooling (window: one MEAN over frames and space; stream: "
                "MEAN of the last L frame means times L/count, the count a one-hot state)"]
    for norm in model.layers:
        if not isinstance(norm, keras.layers.BatchNormalization):
            continue
        before = norm.input._keras_history.operation   # the layer that feeds the norm
        if isinstance(before, streaming.CausalTemporalConv):
            replacements[before.name] = FoldedTemporalConv(before, norm)
        elif isinstance(before, streaming.PerFrame) and isinstance(
                before.layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) \
                and not before.layer.use_bias:
            replacements[before.name] = folded_frame_conv(before, norm)
        else:
            continue
        replacements[norm.name] = keras.layers.Identity(name=norm.name)
        rewrites.append(f"{norm.name}: folded into {before.name}'s kernel and bias")
    return GraphRewrite(streaming.build_window_model_with(model, replacements),
                        replacements, tuple(rewrites))
