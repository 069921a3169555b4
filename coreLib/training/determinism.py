"""What ``--deterministic`` does: each training and Eval step compiled by XLA.

Measured on this CPU (note of issue 21; LRCN at 6x64x64x3, batch 16, the same
batch and weights): TensorFlow's own kernels gave last-bit different gradients
from one instantiation of the same step graph to the next - in a new process,
or when the same step was traced again - while every activation and every
activation gradient was identical. Two kernels did it: the first layer's filter
gradient (Eigen's Conv2DBackpropFilter, even on one thread and with oneDNN off)
and the convolutions' bias gradients (oneDNN's fused backward-with-bias, gone
with ``TF_ENABLE_ONEDNN_OPTS=0``). Within one instantiation the executor's
inter-op scheduling added more. ``tf.config.experimental.enable_op_determinism()``
changed none of it. Adam turns such last bits into 0 of 36 identical arrays after
a few dozen steps.

A step compiled with ``jit_compile=True`` is one XLA program whose kernels and
buffer layout are fixed at compile time: the same arguments give the same bits
in every instantiation and every process (measured: every gradient of the probe
above identical across fresh traces). The price is the compile of the first
call, and XLA's kernels instead of oneDNN's (README, ``--deterministic``).
``enable_op_determinism`` is not switched on: it refuses XLA's MaxPool gradient
("no deterministic XLA implementation" - a GPU concern; on CPU XLA's
select-and-scatter is deterministic), and the input pipeline's order is fixed by
its own options (``pipeline.PipelineConfig.deterministic``, always on in
training).
"""

from typing import Callable, Tuple

from coreLib.cli import import_tensorflow_quietly

tf = import_tensorflow_quietly()


def compiled_steps(train_step: Callable, eval_step: Callable) -> Tuple[Callable, Callable]:
    """The train and eval step functions, each compiled as one XLA program.

    Args:
        train_step, eval_step: ``(pixels (B, L, D, D, C) float32, one-hot (B, K)
            float32) -> (loss, correct)`` float32 scalars, called under
            ``strategy.run``.

    Returns:
        ``(train_step, eval_step)`` wrapped in ``tf.function(jit_compile=True)``.
    """
    return (tf.function(train_step, jit_compile=True),
            tf.function(eval_step, jit_compile=True))


def configure_replicated() -> None:
    """``--deterministic`` with several replicas: TensorFlow's deterministic-op mode.

    The XLA-compiled step failed under ``MirroredStrategy`` over logical CPU devices,
    so several replicas keep TensorFlow's own kernels with
    ``enable_op_determinism()`` (as before); the per-instantiation last-bit
    differences measured on one replica are not removed there.
    """
    tf.config.experimental.enable_op_determinism()

