"""Adam with one fused kernel per variable (the optimizer train.py uses).

Keras 3's Adam updates each variable with about ten separate element-wise ops
(``m += (g - m)(1 - b1)``, ``v += ...``, ``var -= ...``), each a full pass over
memory. ConvNet3D has 57-95 M parameters, so on a CPU that update alone took
about as long as the forward and backward pass of a small batch (0.5-2 s per step
on 2 cores). TensorFlow's ``ResourceApplyAdam`` kernel does the same arithmetic in
one multithreaded pass (and has GPU and XLA/TPU kernels), about 5x faster here.

The arithmetic is Keras' Adam (epsilon added outside the square root, bias
correction folded into the step size)::

    alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)
    m += (g - m) * (1 - b1);  v += (g^2 - v) * (1 - b2);  var -= alpha * m / (sqrt(v) + eps)

and the optimizer's variables (iterations, momentums, velocities) are Keras'
own, so checkpoints are interchangeable with ``keras.optimizers.Adam``.
"""

from coreLib.cli import import_tensorflow_quietly

tf = import_tensorflow_quietly()

import keras  # noqa: E402  (after the quiet TensorFlow import)


class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose dense updates run as ``ResourceApplyAdam``.

    Falls back to Keras' own update for what the kernel does not cover: AMSGrad
    and sparse (``IndexedSlices``) gradients.
    """

    def __init__(self, *args, name: str = "adam", **kwargs):
        # Keras' name, so variable paths (summaries, weight files) read as before.
        super().__init__(*args, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        # Under the TensorFlow backend ``variable`` is the tf.Variable (inside a
        # strategy's update() call: this device's component), so its handle and
        # the slot variables' handles address the same device.
        dtype = variable.dtype
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype),
            use_locking=False, use_nesterov=False)
        return None


LR_SCHEDULES = ("constant", "cosine", "warmup-cosine")
# warmup-cosine: this share of the run's steps climbs linearly from 0 to the peak
# step size. Adam's first steps, with freshly initialised BatchNorm statistics and
# second-moment estimates of a handful of gradients, are the ones that diverge at
# the large step sizes short runs need.
WARMUP_FRACTION = 0.05


def learning_rate_schedule(learning_rate: float, schedule: str = "constant",
                           total_steps: int = 0):
    """The step size, fixed or decaying over the run.

    ``cosine`` falls from ``learning_rate`` at step 0 to 0 at ``total_steps``
    (half a cosine, no restarts): short runs end on small steps, so the last
    epoch's weights are also the steadiest. ``warmup-cosine`` first rises linearly
    from 0 to ``learning_rate`` over :data:`WARMUP_FRACTION` of the steps, then
    falls as ``cosine`` does over the rest. The schedule reads the optimizer's
    step counter, which the checkpoint holds, so a resumed run continues on it.

    Args:
        learning_rate: the step size (at step 0 for ``cosine``).
        schedule: one of :data:`LR_SCHEDULES`.
        total_steps: steps of the whole run (cosine schedules only; >= 1).

    Returns:
        A float or a ``keras.optimizers.schedules.LearningRateSchedule``.
    """
    if schedule == "constant":
        return learning_rate
    if schedule in ("cosine", "warmup-cosine"):
        if total_steps < 1:
            raise ValueError(f"cosine schedule needs total_steps >= 1, got {total_steps!r}")
        if schedule == "cosine":
            return keras.optimizers.schedules.CosineDecay(learning_rate, total_steps,
                                                          alpha=0.0)
        warmup_steps = max(1, round(WARMUP_FRACTION * total_steps))
        return keras.optimizers.schedules.CosineDecay(
            0.0, max(1, total_steps - warmup_steps), alpha=0.0,
            warmup_target=learning_rate, warmup_steps=warmup_steps)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; valid names: "
                     f"{', '.join(LR_SCHEDULES)}")


def make_optimizer(learning_rate, loss_scaling: bool = False):
    """The training optimizer: :class:`FusedAdam`, wrapped for float16 loss scaling.

    Args:
        learning_rate: Adam step size, a float or a learning-rate schedule
            (:func:`learning_rate_schedule`).
        loss_scaling: wrap in ``keras.optimizers.LossScaleOptimizer`` (float16 on GPU).

    Returns:
        An unbuilt Keras optimizer.
    """
    optimizer = FusedAdam(learning_rate=learning_rate)
    if loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
