"""Everything a checkpoint holds: the model, the optimizer, the counters, the history.

``checkpoints/ckpt-<step>`` in MODEL_DIR (a ``tf.train.CheckpointManager``) holds the
model, its Dropout seed states, the optimizer, the epoch, the step in the epoch,
the global step, the best loss so far, the epoch accumulators and the history of
finished epochs, so an epoch is never lost or counted twice whatever moment the
previous run was killed at.
"""

import contextlib
import json
import math
import shutil
import tempfile
from typing import Dict, List

from coreLib import models, storage
from coreLib.training import optimizer as optimizer_lib
from coreLib.training import strategy as strategy_lib
from coreLib.training.config import TrainConfig
from coreLib.training.run_folder import CHECKPOINT_FOLDER
from coreLib.training.run_setup import RunSetup

tf = storage.tf

import keras  # noqa: E402  (after the quiet TensorFlow import)

MAX_CHECKPOINTS_KEPT = 3


def random_state_variables(model) -> Dict[str, list]:
    """The model's random-number state, which the checkpoint must hold too.

    Keras 3 draws every Dropout mask statelessly from a ``SeedGenerator`` whose
    ``(2,)`` int64 state variable advances by one per training call. The state is
    in ``layer.variables`` but neither in ``layer.weights`` nor in
    ``tf.train.Checkpoint(model=model)`` (a SeedGenerator is no trackable object),
    so without this a resumed run would draw the masks of step 1 again.

    Returns:
        Top-level layer name -> that layer's seed-generator state variables, for
        the layers that have any (ConvNet3D and LRCN: their Dropout and LSTM
        layers; DUMMY: none).
    """
    weight_ids = {id(weight) for weight in model.weights}
    states = {}
    for layer in model.layers:
        seeds = [variable for variable in layer.variables if id(variable) not in weight_ids]
        if seeds:
            states[layer.name] = seeds
    return states


@contextlib.contextmanager
def _dtype_policy(name: str):
    """Sets Keras' global dtype policy while the model is built, then restores it."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _policy_name(config: TrainConfig) -> str:
    if not config.mixed_precision:
        return "float32"
    if config.strategy != strategy_lib.TPU and strategy_lib.uses_gpu():
        return "mixed_float16"
    return "mixed_bfloat16"


class TrainingState:
    """The model, the optimizer and every counter a checkpoint holds.

    A resumed run continues from exactly this state: epoch, step in the epoch,
    global step, best loss so far, the epoch's float64 accumulators (loss sum,
    correct predictions, seconds) and the history of finished epochs.
    """

    def __init__(self, config: TrainConfig, setup: RunSetup):
        keras.utils.set_random_seed(config.seed)
        strategy = setup.strategy
        manifest = setup.manifest
        policy = _policy_name(config)
        with strategy.scope():
            with _dtype_policy(policy):
                total_steps = config.epochs * setup.steps_per_epoch
                self.model = models.build_model(config.model_name, manifest.seq_len,
                                                manifest.image_dim, manifest.channels,
                                                manifest.num_classes,
                                                bn_momentum=config.bn_momentum_for(total_steps))
            self.optimizer = optimizer_lib.make_optimizer(
                optimizer_lib.learning_rate_schedule(
                    config.peak_lr, config.lr_schedule, total_steps),
                loss_scaling=policy == "mixed_float16")
            self.optimizer.build(self.model.trainable_variables)
            # The epoch accumulators (the "metrics"): reduced sums over the replicas.
            self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)
            self.correct = tf.Variable(0.0, dtype=tf.float64, trainable=False)
            self.epoch_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best_loss = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
        self._history = tf.Variable("[]", dtype=tf.string, trainable=False)
        self._run_state = dict(
            model=self.model, optimizer=self.optimizer, epoch=self.epoch,
            step_in_epoch=self.step_in_epoch, global_step=self.global_step,
            best_loss=self.best_loss, history=self._history,
            train_loss_sum=self.loss_sum, train_correct=self.correct,
            epoch_seconds=self.epoch_seconds)
        self.checkpoint = tf.train.Checkpoint(
            random_states=random_state_variables(self.model), **self._run_state)
        self.checkpoint_dir = storage.join(setup.model_dir, CHECKPOINT_FOLDER)
        # Non-chief workers must save too (saving may run collectives), but elsewhere.
        self.scratch_dir = None if setup.chief else tempfile.mkdtemp(
            prefix=f"actrecog-{strategy_lib.worker_id(strategy)}-")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.scratch_dir or self.checkpoint_dir,
            max_to_keep=MAX_CHECKPOINTS_KEPT)

    def restore_latest(self) -> int:
        """Restores the newest checkpoint of MODEL_DIR, if any; returns its global step."""
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if latest:
            restorer = self.checkpoint
            if not any(name.startswith("random_states/")
                       for name, _ in tf.train.list_variables(latest)):
                # Written before the seed states were checkpointed (or DUMMY, which
                # has none): resumes with the states as built, as such runs did.
                restorer = tf.train.Checkpoint(**self._run_state)
            restorer.restore(latest).assert_existing_objects_matched()
        return int(self.global_step.numpy())

    def save(self) -> None:
        self.manager.save(checkpoint_number=int(self.global_step.numpy()))

    @property
    def history(self) -> List[dict]:
        return json.loads(self._history.numpy().decode("utf-8"))

    def begin_epoch(self) -> int:
        """Clears the accumulators at a fresh epoch start; returns the step to resume at."""
        step = int(self.step_in_epoch.numpy())
        if step == 0:
            self.loss_sum.assign(0.0)
            self.correct.assign(0.0)
            self.epoch_seconds.assign(0.0)
        return step

    def add_steps(self, result: dict, steps: int, seconds: float) -> None:
        """Adds one host call's sums; ``seconds``: the epoch's time so far."""
        self.loss_sum.assign_add(float(result["loss_sum"]))
        self.correct.assign_add(float(result["correct"]))
        self.step_in_epoch.assign_add(steps)
        self.global_step.assign_add(steps)
        self.epoch_seconds.assign(seconds)

    def end_epoch(self, entry: dict) -> None:
        """Appends the epoch's entry to the history and moves to the next epoch."""
        self._history.assign(json.dumps(self.history + [entry]))
        self.epoch.assign(entry["epoch"])
        self.step_in_epoch.assign(0)

    def close(self) -> None:
        if self.scratch_dir:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
