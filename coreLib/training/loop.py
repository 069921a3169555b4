"""The loop: compiled step functions, one epoch's Train steps, one Eval pass.

One loop for every strategy (see :mod:`coreLib.training.strategy`): the batches go
through ``strategy.experimental_distribute_dataset``; one ``tf.function`` runs
``steps_per_loop`` steps per host call, each under ``strategy.run``. The
per-example cross-entropy is averaged over the GLOBAL batch and the models' L2
penalties are scaled per replica, so the summed gradient equals the one-device
gradient whatever the number of replicas.
"""

import time

from coreLib import storage
from coreLib.training import determinism, epoch_datasets
from coreLib.training.checkpoint_state import TrainingState
from coreLib.training.config import EVAL_SPLIT, TRAIN_SPLIT, TrainConfig
from coreLib.training.outputs import RunOutputs
from coreLib.training.run_setup import RunSetup
from coreLib.errors import ActrecogError
from coreLib.progress import progress_bar

tf = storage.tf

import keras  # noqa: E402  (after the quiet TensorFlow import)


class _EpochProgress:
    """Progress of one epoch's steps (loss, accuracy, sequences/s) on the chief only.

    On a terminal a bar that the epoch's summary line replaces; in a log a plain
    line a minute and one when the steps are done (before the Eval pass).
    """

    def __init__(self, enabled: bool, epoch: int, epochs: int, total: int, initial: int):
        self.bar = progress_bar(total, desc=f"epoch {epoch}/{epochs}", unit="step",
                                initial=initial, leave=False, enabled=enabled,
                                plain_end_line=True)

    def update(self, steps: int, loss: float, accuracy: float, rate: float) -> None:
        self.bar.set_postfix(loss=f"{loss:.4f}", accuracy=f"{accuracy:.3f}",
                             seq_per_s=f"{rate:.0f}", refresh=False)
        self.bar.update(steps)

    def close(self) -> None:
        self.bar.close()


def _loss_and_correct(model, global_batch: int, labels, probabilities,
                      label_smoothing: float = 0.0):
    """One step's ``(loss, correct)``: ``labels`` and ``probabilities`` ``(B, K)`` float32.

    Cross-entropy averaged over the GLOBAL batch plus the L2 penalties scaled per
    replica, so summing over replicas gives the true batch loss; ``correct`` is the
    float32 count of right top-1 predictions. ``label_smoothing`` s replaces the
    one-hot targets by ``(1 - s) * labels + s / K`` in the cross-entropy only.
    """
    per_example = keras.losses.categorical_crossentropy(labels, probabilities,
                                                       label_smoothing=label_smoothing)
    loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
    if model.losses:
        loss += tf.nn.scale_regularization_loss(
            tf.add_n([tf.cast(term, tf.float32) for term in model.losses]))
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probabilities, axis=-1),
                                             tf.argmax(labels, axis=-1)), tf.float32))
    return loss, correct


def make_step_loops(strategy, model, optimizer, global_batch: int,
                    deterministic: bool = False, label_smoothing: float = 0.0):
    """The compiled train and eval loops (also used by bench/train_step.py).

    Args:
        strategy: the distribution strategy the model and optimizer were built in.
        model: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32 probabilities.
        optimizer: a Keras optimizer (or LossScaleOptimizer) built for the model.
        global_batch: global batch size (the loss is averaged over it).
        deterministic: compile each step with XLA (``--deterministic``, one replica;
            see :mod:`coreLib.training.determinism`).
        label_smoothing: smoothing of the Train steps' targets (``--label-smoothing``;
            the eval loop's loss is the plain cross-entropy).

    Returns:
        ``(train_loop, eval_loop)``: ``tf.function`` s taking a distributed iterator
        of ``(pixels, one-hot)`` batches and a scalar int step count; each runs that
        many steps under ``strategy.run`` and returns ``{"loss_sum", "correct"}``
        float64 totals over the steps and replicas.
    """
    def loss_and_correct(labels, probabilities, smoothing=0.0):
        return _loss_and_correct(model, global_batch, labels, probabilities, smoothing)

    def train_step(inputs):
        pixels, labels = inputs
        with tf.GradientTape() as tape:
            probabilities = model(pixels, training=True)
            loss, correct = loss_and_correct(labels, probabilities, label_smoothing)
            scaled_loss = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, correct

    def eval_step(inputs):
        pixels, labels = inputs
        return loss_and_correct(labels, model(pixels, training=False))

    if deterministic and strategy.num_replicas_in_sync == 1:
        train_step, eval_step = determinism.compiled_steps(train_step, eval_step)

    def run_steps(step_fn, iterator, num_steps):
        # float64 sums of float32 step losses are exact here, so the epoch figures
        # do not depend on how the steps were grouped into host calls (resumes).
        loss_sum = tf.constant(0.0, tf.float64)
        correct = tf.constant(0.0, tf.float64)
        for _ in tf.range(num_steps):
            loss, right = strategy.run(step_fn, args=(next(iterator),))
            loss_sum += tf.cast(strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                                tf.float64)
            correct += tf.cast(strategy.reduce(tf.distribute.ReduceOp.SUM, right, axis=None),
                               tf.float64)
        return {"loss_sum": loss_sum, "correct": correct}

    train_loop = tf.function(lambda iterator, num_steps: run_steps(train_step, iterator,
                                                                   num_steps))
    eval_loop = tf.function(lambda iterator, num_steps: run_steps(eval_step, iterator,
                                                                  num_steps))
    return train_loop, eval_loop


def _call_loop(config: TrainConfig, loop_fn, split: str, iterator, num_steps: int) -> dict:
    try:
        return loop_fn(iterator, tf.constant(num_steps))
    except tf.errors.InvalidArgumentError as error:
        # The pipeline asserts every record's shape (and 1.0.4 labels); a bad
        # record surfaces here. The assertion's text without tf.data's frames:
        reason = (error.message or str(error)).splitlines()[0]
        reason = reason.split("assertion failed: ")[-1]
        raise ActrecogError(f"{config.dataset_dir}: a {split} record disagrees with "
                            f"the manifest ({reason}); run debug.py "
                            f"{config.dataset_dir} CHECK to find it") from None


def _chunks(steps_per_loop: int, step: int, end: int, global_step: int = 0,
            checkpoint_every: int = 0):
    """Steps per host call from ``step`` to ``end``, cut at every ``checkpoint_every``-th
    global step (so a mid-epoch checkpoint falls between two host calls)."""
    while step < end:
        chunk = min(steps_per_loop, end - step)
        if checkpoint_every:
            chunk = min(chunk, checkpoint_every - global_step % checkpoint_every)
        yield chunk
        step += chunk
        global_step += chunk


def train_epoch(config: TrainConfig, setup: RunSetup, state: TrainingState,
                 train_loop, outputs: RunOutputs, epoch: int, progress: bool) -> dict:
    """Runs (the rest of) one epoch's Train steps; returns its history entry's Train part."""
    steps_per_epoch = setup.steps_per_epoch
    step = state.begin_epoch()
    iterator = iter(epoch_datasets.distribute_dataset(setup.strategy, epoch_datasets.make_train_dataset(
        config, setup.manifest, epoch, steps_per_epoch, skip_steps=step,
        shard_uris=setup.shard_uris[TRAIN_SPLIT])))
    bar = _EpochProgress(progress and setup.chief, epoch + 1, config.epochs,
                         steps_per_epoch, step)
    started, started_seconds = time.perf_counter(), float(state.epoch_seconds.numpy())
    steps_this_run = 0
    try:
        for chunk in _chunks(config.steps_per_loop, step, steps_per_epoch,
                             int(state.global_step.numpy()), config.checkpoint_every):
            result = _call_loop(config, train_loop, TRAIN_SPLIT, iterator, chunk)
            elapsed = time.perf_counter() - started
            state.add_steps(result, chunk, started_seconds + elapsed)
            step += chunk
            steps_this_run += chunk
            global_step = int(state.global_step.numpy())
            bar.update(chunk, float(state.loss_sum.numpy()) / step,
                       float(state.correct.numpy()) / (step * config.batch_size),
                       steps_this_run * config.batch_size / max(elapsed, 1e-9))
            outputs.step_loss(float(result["loss_sum"]) / chunk, global_step)
            if (config.checkpoint_every and step < steps_per_epoch
                    and global_step % config.checkpoint_every == 0):
                state.save()
    finally:
        bar.close()
    train_seconds = time.perf_counter() - started
    return {
        "epoch": epoch + 1,
        "train_loss": float(state.loss_sum.numpy()) / steps_per_epoch,
        "train_accuracy": float(state.correct.numpy()) / (steps_per_epoch * config.batch_size),
        "eval_loss": None,
        "eval_accuracy": None,
        "seconds": float(state.epoch_seconds.numpy()),
        "sequences_per_second": (steps_this_run * config.batch_size / train_seconds
                                 if train_seconds > 0 else None),
    }


def evaluate(config: TrainConfig, setup: RunSetup, eval_loop):
    """One Eval pass: ``(mean loss, accuracy)`` over ``setup.eval_steps`` batches."""
    iterator = iter(epoch_datasets.distribute_dataset(setup.strategy, epoch_datasets.make_eval_dataset(
        config, setup.manifest, setup.eval_steps, shard_uris=setup.shard_uris[EVAL_SPLIT])))
    loss_sum, correct = 0.0, 0.0
    for chunk in _chunks(config.steps_per_loop, 0, setup.eval_steps):
        result = _call_loop(config, eval_loop, EVAL_SPLIT, iterator, chunk)
        loss_sum += float(result["loss_sum"])
        correct += float(result["correct"])
    return loss_sum / setup.eval_steps, correct / (setup.eval_steps * config.batch_size)
