"""FusedAdam (coreLib.optimizer) is Keras' Adam, one kernel per variable.

The distributed tests (test_distributed.py, test_kill_resume.py) run it under
MirroredStrategy and MultiWorkerMirroredStrategy through train.py's loop.
"""

import numpy as np

from coreLib.cli import import_tensorflow_quietly
from coreLib.optimizer import FusedAdam, make_optimizer

tf = import_tensorflow_quietly()

import keras  # noqa: E402

SHAPES = ((3, 3, 3, 4, 8), (8,), (40, 17), (17,))
STEPS = 7


def _run(optimizer_class, learning_rate=1e-2):
    rng = np.random.default_rng(3)
    variables = [tf.Variable(rng.standard_normal(shape).astype(np.float32))
                 for shape in SHAPES]
    gradients = [[tf.constant(rng.standard_normal(shape).astype(np.float32))
                  for shape in SHAPES] for _ in range(STEPS)]
    optimizer = optimizer_class(learning_rate=learning_rate)
    optimizer.build(variables)

    @tf.function
    def apply(step_gradients):
        optimizer.apply_gradients(zip(step_gradients, variables))

    for step_gradients in gradients:
        apply(step_gradients)
    return optimizer, [variable.numpy() for variable in variables]


def test_fused_adam_takes_the_same_steps_as_keras_adam():
    keras_optimizer, keras_values = _run(keras.optimizers.Adam)
    fused_optimizer, fused_values = _run(FusedAdam)
    for expected, actual in zip(keras_values, fused_values):
        # Same formula, different operation order: float32 rounding only.
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    # The moved distance is real (not a no-op on both sides).
    assert max(np.abs(value).max() for value in keras_values) > 0
    assert int(fused_optimizer.iterations.numpy()) == STEPS
    for kind in ("_momentums", "_velocities"):
        for expected, actual in zip(getattr(keras_optimizer, kind),
                                    getattr(fused_optimizer, kind)):
            np.testing.assert_allclose(actual.numpy(), expected.numpy(),
                                       rtol=1e-5, atol=1e-7)


def test_fused_adam_keeps_keras_adam_variable_names_for_checkpoints():
    keras_optimizer, _ = _run(keras.optimizers.Adam)
    fused_optimizer, _ = _run(FusedAdam)
    def names(optimizer):
        # Paths without the optimizer's instance number (adam, adam_1, ...).
        return [variable.path.split("/", 1)[1] for variable in optimizer.variables]

    assert fused_optimizer.name.startswith("adam")
    assert names(fused_optimizer) == names(keras_optimizer)


def test_make_optimizer_wraps_for_loss_scaling():
    assert isinstance(make_optimizer(1e-4), FusedAdam)
    scaled = make_optimizer(1e-4, loss_scaling=True)
    assert isinstance(scaled, keras.optimizers.LossScaleOptimizer)
    assert isinstance(scaled.inner_optimizer, FusedAdam)
