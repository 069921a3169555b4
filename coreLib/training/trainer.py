"""The driver of a training run behind train.py and debug.py: :func:`train`.

A run, in the order it happens (each step in its own module)::

    config            TrainConfig: what the run does, train.py's defaults
    run_setup         strategy, manifest, shard checks, batch counts, MODEL_DIR read
    checkpoint_state  the model, optimizer and counters a checkpoint holds
    run_folder        MODEL_DIR's checks and its claim (the run's first write)
    loop              compiled steps, one epoch's Train steps, one Eval pass
    epoch_datasets    each epoch's Train batches and the Eval batches
    outputs           weights, history, curves, TensorBoard

MODEL_DIR (a local folder or ``gs://`` URI) holds::

    run_config.json           model name, window shape, classes: checked on resume
    checkpoints/ckpt-<step>   tf.train.CheckpointManager (model, its Dropout seed
                              states, optimizer, epoch, step in epoch, best loss,
                              epoch accumulators, history)
    <model>.weights.h5        best weights by eval loss (train loss with no eval)
    <model>_final.weights.h5  weights after the last epoch
    history.json              one entry per finished epoch
    <model>_history.png       loss and accuracy curves
    logs/train, logs/eval     TensorBoard summaries

Resuming: the Train order of an epoch is a pure function of (seed, epoch), so a
restarted run rebuilds the epoch's dataset, skips the batches the checkpoint has
already consumed and continues with the same step, accumulators, best-so-far
and Dropout seed states (so the same masks).
The history is stored inside the checkpoint too, so an epoch is never lost or
counted twice whatever moment the previous run was killed at.

The names train.py, debug.py, the tests and the benches use are importable from
here too (``trainer.TrainConfig``, ``trainer.make_step_loops``, ...).
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from coreLib import storage
from coreLib.data import manifest as manifest_lib
from coreLib.errors import ActrecogError
from coreLib.training.checkpoint_state import TrainingState
from coreLib.training.loop import evaluate, make_step_loops, train_epoch
from coreLib.training.outputs import RunOutputs, best_weights_name, final_weights_name
from coreLib.training.run_folder import claim_model_dir
from coreLib.training.run_setup import prepare_run
from coreLib.training.config import TrainConfig

# The training API in one place: train.py, debug.py, the tests and the benches use
# these as ``trainer.<name>``; each lives in the module of its concern.
from coreLib.training.checkpoint_state import random_state_variables  # noqa: F401,E402
from coreLib.training.config import (  # noqa: F401,E402
    DEFAULT_AUGMENT, DEFAULT_COLOR_JITTER, DEFAULT_LABEL_SMOOTHING, DEFAULT_LR_SCHEDULE,
    DEFAULT_MIXUP, DEFAULT_ZOOM_JITTER, epoch_seed)
from coreLib.training.epoch_datasets import make_eval_dataset, make_train_dataset  # noqa
from coreLib.training.run_folder import RUN_CONFIG_NAME, run_config_of  # noqa: F401
from coreLib.training.run_setup import check_batch_size  # noqa: F401

tf = storage.tf

import keras  # noqa: E402  (after the quiet TensorFlow import)


@dataclass
class TrainingResult:
    """What :func:`run_training` leaves: the trained model and the history."""
    model: "keras.Model"
    history: List[Dict[str, Optional[float]]]
    global_step: int
    num_replicas: int
    is_chief: bool = True
    resumed_from_step: int = 0
    manifest: Optional[manifest_lib.Manifest] = field(default=None, repr=False)


def run_training(config: TrainConfig, progress: bool = True) -> TrainingResult:
    """Trains (or resumes training of) a model; see the module docstring for files.

    Args:
        config: the run.
        progress: show a bar per epoch and print a summary line per epoch.

    Returns:
        :class:`TrainingResult` with the trained model and the full history.

    Raises:
        ActrecogError: unknown model, no manifest, missing or corrupt shard, records
            whose shape disagrees with the manifest, unusable batch size, or a
            MODEL_DIR holding another model or shape.
    """
    config, setup = prepare_run(config)
    state = TrainingState(config, setup)   # builds the model: the last check
    if setup.chief:
        claim_model_dir(setup.model_dir, setup.run_config, setup.resuming)
    resumed_from_step = state.restore_latest()
    train_loop, eval_loop = make_step_loops(setup.strategy, state.model, state.optimizer,
                                            config.batch_size, config.deterministic,
                                            config.label_smoothing)
    outputs = RunOutputs(setup, config.model_name)
    # A resumed run may have been killed after its checkpoint but before these.
    outputs.history(state.history)
    try:
        for epoch in range(int(state.epoch.numpy()), config.epochs):
            entry = train_epoch(config, setup, state, train_loop, outputs, epoch, progress)
            if config.eval:
                entry["eval_loss"], entry["eval_accuracy"] = evaluate(config, setup,
                                                                       eval_loop)
            score = entry["eval_loss"] if config.eval else entry["train_loss"]
            if score < float(state.best_loss.numpy()):
                state.best_loss.assign(score)
                outputs.weights(state.model, best_weights_name(config.model_name))
            state.end_epoch(entry)
            state.save()
            outputs.history(state.history)
            outputs.epoch_scalars(entry)
            if progress and setup.chief:
                print(format_epoch(entry, config.epochs), flush=True)
        outputs.weights(state.model, final_weights_name(config.model_name))
    finally:
        outputs.close()
        state.close()
    return TrainingResult(model=state.model, history=state.history,
                          global_step=int(state.global_step.numpy()),
                          num_replicas=setup.strategy.num_replicas_in_sync,
                          is_chief=setup.chief, resumed_from_step=resumed_from_step,
                          manifest=setup.manifest)


def format_epoch(entry: dict, epochs: int) -> str:
    """The one summary line printed after each epoch."""
    text = (f"epoch {entry['epoch']}/{epochs}: train loss {entry['train_loss']:.4f} "
            f"accuracy {entry['train_accuracy']:.4f}")
    if entry.get("eval_loss") is not None:
        text += f" | eval loss {entry['eval_loss']:.4f} accuracy {entry['eval_accuracy']:.4f}"
    rate = entry.get("sequences_per_second")
    text += f" | {entry['seconds']:.1f} s"
    if rate:
        text += f", {rate:.1f} sequences/s"
    return text


# Errors of the file systems under DATASET_DIR / MODEL_DIR (gs:// included) that
# end a run with one line instead of a traceback.
_STORAGE_ERRORS = (tf.errors.AbortedError, tf.errors.UnavailableError,
                   tf.errors.DeadlineExceededError, tf.errors.PermissionDeniedError,
                   tf.errors.DataLossError)


def train(config: TrainConfig, progress: bool = True) -> List[Dict[str, Optional[float]]]:
    """Trains a model (resuming from MODEL_DIR when it holds a checkpoint).

    Args:
        config: the run.
        progress: show a bar per epoch and print a summary line per epoch.

    Returns:
        The history: one dict per finished epoch (``epoch``, ``train_loss``,
        ``train_accuracy``, ``eval_loss``, ``eval_accuracy``, ``seconds``,
        ``sequences_per_second``), including epochs of earlier, resumed runs.
    """
    try:
        return run_training(config, progress).history
    except _STORAGE_ERRORS as error:
        # A bucket or disk that fails mid-run (outage, lost credentials, full disk):
        # checkpoints are written atomically, so the last one stays usable.
        reason = (error.message or str(error)).splitlines()[0]
        raise ActrecogError(f"{config.model_dir}: storage failed during training "
                            f"({reason}); the last checkpoint is kept - run the same "
                            f"command again to resume") from None
