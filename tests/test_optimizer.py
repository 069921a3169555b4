"""FusedAdam (coreLib.training.optimizer) is Keras' Adam, one kernel per variable.

The distributed tests (test_distributed.py, test_kill_resume.py) run it under
MirroredStrategy and MultiWorkerMirroredStrategy through train.py's loop.
"""

import numpy as np

from coreLib.cli import import_tensorflow_quietly
from coreLib.training.optimizer import FusedAdam, make_optimizer

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


def test_cosine_schedule_falls_from_lr_to_zero_and_drives_fused_adam():
    import math

    import train
    from coreLib.training.optimizer import LR_SCHEDULES, learning_rate_schedule

    assert learning_rate_schedule(3e-4) == 3e-4
    schedule = learning_rate_schedule(3e-4, "cosine", total_steps=8)
    for step in range(9):
        expected = 3e-4 * 0.5 * (1 + math.cos(math.pi * step / 8))
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-5, atol=1e-12)
    # Past the end it stays at zero (a resumed run with more epochs rebuilds it).
    assert float(schedule(20)) == 0.0
    # FusedAdam follows the schedule exactly as Keras' Adam does.
    _, keras_values = _run(keras.optimizers.Adam,
                           learning_rate_schedule(1e-2, "cosine", STEPS))
    _, fused_values = _run(FusedAdam, learning_rate_schedule(1e-2, "cosine", STEPS))
    _, constant_values = _run(FusedAdam, 1e-2)
    for expected, actual in zip(keras_values, fused_values):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(fused_values, constant_values))
    # train.py offers the same names without importing TensorFlow for --help.
    choices = next(action.choices for action in train.build_parser()._actions
                   if action.dest == "lr_schedule")
    assert tuple(choices) == LR_SCHEDULES
    # warmup-cosine: 0 -> lr linearly over 5 % of the steps, then the cosine.
    warm = learning_rate_schedule(1e-3, "warmup-cosine", total_steps=100)
    np.testing.assert_allclose([float(warm(step)) for step in (0, 1, 4, 5)],
                               [0.0, 2e-4, 8e-4, 1e-3], rtol=1e-5, atol=1e-12)
    for step in (5, 50, 100):
        expected = 1e-3 * 0.5 * (1 + math.cos(math.pi * (step - 5) / 95))
        np.testing.assert_allclose(float(warm(step)), expected, rtol=1e-5, atol=1e-12)
    for bad in (("cosine", 0), ("linear", 5)):
        try:
            learning_rate_schedule(1e-3, *bad)
        except ValueError as error:
            assert bad[0] in str(error) or "total_steps" in str(error)
        else:
            raise AssertionError(f"{bad} accepted")
