"""The distributed custom training loop behind train.py and debug.py.

One loop for every strategy (see :mod:`coreLib.training.strategy`): the model, optimizer and
the epoch accumulators live under ``strategy.scope()``; the batches go through
``strategy.experimental_distribute_dataset``; one ``tf.function`` runs
``steps_per_loop`` steps per host call, each under ``strategy.run``. The
per-example cross-entropy is averaged over the GLOBAL batch and the models' L2
penalties are scaled per replica, so the summed gradient equals the one-device
gradient whatever the number of replicas.

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
"""

import contextlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

from coreLib.data import manifest as manifest_lib
from coreLib import models, storage
from coreLib.preprocessing import augment, legacy_records, shards
from coreLib.training import determinism, pipeline
from coreLib.training import optimizer as optimizer_lib
from coreLib.training import strategy as strategy_lib
from coreLib.errors import ActrecogError
from coreLib.progress import progress_bar

tf = storage.tf

import keras  # noqa: E402  (after the quiet TensorFlow import)

# train.py's recipe (README "Training recipe"): what the measurements on both
# synthetic families support.
DEFAULT_LR_SCHEDULE = "warmup-cosine"
DEFAULT_AUGMENT = "rotate"
DEFAULT_ZOOM_JITTER = 0.0
DEFAULT_COLOR_JITTER = 0.0
BN_MOMENTUM_RANGE = (0.9, 0.99)

RUN_CONFIG_NAME = manifest_lib.RUN_CONFIG_NAME
HISTORY_NAME = "history.json"
CHECKPOINT_FOLDER = "checkpoints"
LOGS_FOLDER = "logs"
MAX_CHECKPOINTS_KEPT = 3
TRAIN_SPLIT = "Train"
EVAL_SPLIT = "Eval"


def best_weights_name(model_name: str) -> str:
    """``<model>.weights.h5``: the best weights by eval loss."""
    return f"{model_name}.weights.h5"


def final_weights_name(model_name: str) -> str:
    """``<model>_final.weights.h5``: the weights after the last epoch."""
    return f"{model_name}_final.weights.h5"


def history_plot_name(model_name: str) -> str:
    return f"{model_name}_history.png"


def epoch_seed(seed: int, epoch: int) -> int:
    """The Train shuffle/augmentation seed of one epoch (0-based).

    Each epoch gets its own order, and a resumed run rebuilds exactly the same one.
    """
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 17) % (2 ** 31 - 1)


@dataclass(frozen=True)
class TrainConfig:
    """What one training run does.

    Attributes:
        dataset_dir: the ``DataSet`` folder or URI holding ``dataset.json``.
        model_name: ``ConvNet3D``, ``LRCN`` or ``DUMMY``.
        model_dir: output folder or URI (checkpoints, weights, history, logs).
        strategy: ``default``, ``mirrored``, ``multiworker`` or ``tpu``.
        tpu: TPU name for ``tpu`` (empty: the local/Colab TPU).
        epochs: epochs to reach in total (a resumed run continues up to it).
        batch_size: GLOBAL batch size, split over the replicas.
        steps_per_epoch: Train steps per epoch; None = one pass over Train.
        steps_per_loop: steps run inside one host call (``tf.function`` loop).
        lr: peak Adam step size; None = the model's (``models.DEFAULT_LEARNING_RATES``).
        lr_schedule: one of ``optimizer.LR_SCHEDULES``: ``constant``, ``cosine``
            (from ``lr`` to 0 over all the epochs' steps) or ``warmup-cosine`` (the
            default: linear warm-up over the first 5 %, then cosine to 0).
        mixed_precision: bfloat16 on TPU/CPU, float16 with loss scaling on GPU.
        checkpoint_every: also checkpoint every this many steps (0 = epoch ends only).
        shuffle_buffer: Train shuffle buffer, in windows.
        seed: seeds weights, shuffling and augmentation.
        eval: run an Eval pass after every epoch.
        eval_steps: Eval batches per pass; None = one pass over Eval.
        deterministic: each step compiled by XLA: bit-identical weights for the same
            config, resumed or not (see :mod:`coreLib.training.determinism`).
        augment: online augmentation of Train, a key of ``augment.AUGMENT_MODES``
            (``none``, ``rotate``, ``rotate-lr``, ``all``; True = ``all``, False =
            ``none``); records stored already augmented are never augmented again.
        bn_momentum: momentum of the models' BatchNorm moving statistics; None =
            from the run's length (:meth:`bn_momentum_for`).
        color_jitter: photometric jitter strength of Train windows (0 = off; see
            ``online_augment.jitter_windows``).
        zoom_jitter: geometric jitter strength of Train windows (zoom and shift;
            0 = off; see ``online_augment.zoom_windows``).
        legacy_classes: class order of a 1.0.4 folder's records (no dataset.json);
            None = ``legacy_records.LEGACY_CLASSES``.
    """
    dataset_dir: str
    model_name: str
    model_dir: str
    strategy: str = strategy_lib.DEFAULT
    tpu: str = ""
    epochs: int = 5
    batch_size: int = 32
    steps_per_epoch: Optional[int] = None
    steps_per_loop: int = 10
    lr: Optional[float] = None
    lr_schedule: str = DEFAULT_LR_SCHEDULE
    mixed_precision: bool = False
    checkpoint_every: int = 0
    shuffle_buffer: int = 1024
    seed: int = 0
    eval: bool = True
    eval_steps: Optional[int] = None
    deterministic: bool = False
    augment: str = DEFAULT_AUGMENT
    bn_momentum: Optional[float] = None
    color_jitter: float = DEFAULT_COLOR_JITTER
    zoom_jitter: float = DEFAULT_ZOOM_JITTER
    legacy_classes: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        models.get_model_builder(self.model_name)
        if self.legacy_classes is not None:
            legacy_records.check_classes(self.legacy_classes)
        if self.strategy not in strategy_lib.STRATEGY_NAMES:
            raise ActrecogError(f"unknown strategy {self.strategy!r}; valid names: "
                                f"{', '.join(strategy_lib.STRATEGY_NAMES)}")
        for name in ("epochs", "batch_size", "steps_per_loop", "shuffle_buffer"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.steps_per_epoch is not None and (
                not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 1):
            raise ValueError(f"steps_per_epoch must be a positive integer or None, "
                             f"got {self.steps_per_epoch!r}")
        if self.eval_steps is not None and (
                not isinstance(self.eval_steps, int) or self.eval_steps < 1):
            raise ValueError(f"eval_steps must be a positive integer or None, "
                             f"got {self.eval_steps!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        object.__setattr__(self, "augment", augment.check_augment_mode(self.augment))
        if self.lr_schedule not in optimizer_lib.LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of "
                             f"{', '.join(optimizer_lib.LR_SCHEDULES)}, "
                             f"got {self.lr_schedule!r}")
        for name in ("color_jitter", "zoom_jitter"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.bn_momentum is not None and not 0 < self.bn_momentum < 1:
            raise ValueError(f"bn_momentum must be between 0 and 1, got {self.bn_momentum!r}")

    @property
    def peak_lr(self) -> float:
        """``lr``, or the model's default (``models.DEFAULT_LEARNING_RATES``)."""
        return self.lr if self.lr is not None else models.DEFAULT_LEARNING_RATES[
            self.model_name]

    def bn_momentum_for(self, total_steps: int) -> float:
        """``bn_momentum``, or the run-length default: ``1 - 20 / total_steps`` within
        [0.9, 0.99]. The moving statistics then average over the last ~5 % of the run
        (the weights they describe change little over that span); Keras' fixed 0.99
        averages over ~100 steps, which in a run of a few hundred steps still holds
        the statistics of much earlier weights and collapses Eval predictions."""
        if self.bn_momentum is not None:
            return self.bn_momentum
        return min(BN_MOMENTUM_RANGE[1], max(BN_MOMENTUM_RANGE[0],
                                             1.0 - 20.0 / max(1, total_steps)))


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


# --------------------------------------------------------------------------- checks

def _split_records(dataset_dir: str, manifest: manifest_lib.Manifest, split: str) -> int:
    info = manifest.splits.get(split)
    if info is None or not info.shards:
        raise ActrecogError(f"{dataset_dir}: the manifest lists no {split} records")
    return info.num_records


def check_batch_size(batch_size: int, num_replicas: int, split_sizes: Dict[str, int]) -> None:
    """Raises ActrecogError when the global batch cannot be used.

    Args:
        batch_size: global batch size.
        num_replicas: ``strategy.num_replicas_in_sync``.
        split_sizes: split name -> number of records.
    """
    if batch_size % num_replicas:
        raise ActrecogError(f"--batch-size {batch_size} is not divisible by the "
                            f"{num_replicas} replicas in sync")
    for split, size in split_sizes.items():
        if batch_size > size:
            raise ActrecogError(f"--batch-size {batch_size} is larger than the {split} "
                                f"split ({size} records)")


def run_config_of(config: TrainConfig, manifest: manifest_lib.Manifest) -> dict:
    """What must not change between a run and its resumption."""
    value = {"model_name": config.model_name,
             "window_shape": list(manifest.window_shape),
             "num_classes": manifest.num_classes,
             "classes": list(manifest.classes),
             # What export.py needs besides the shape (not compared on resume).
             "modality": manifest.modality,
             "dtype": manifest.dtype,
             # Where export.py finds the Test windows (parity) and the Train windows
             # (int8 calibration) when it is not given --manifest.
             "dataset_dir": storage.absolute(config.dataset_dir)}
    # How score.py, detect.py and export.py must turn frames into windows
    # (absent: full frames, as 1.0.x's run configs).
    value.update(manifest_lib.frame_json(manifest))
    return value


def check_not_exported_model(dataset_dir: str, model_dir: str) -> None:
    """Refuses export.py's outputs (a .tflite file, a SavedModel) as DATASET_DIR or
    MODEL_DIR: they hold no checkpoints to resume and no records to train on.

    Raises:
        ActrecogError: naming the argument.
    """
    for argument, path in (("DATASET_DIR", dataset_dir), ("MODEL_DIR", model_dir)):
        if path.endswith(".tflite") or storage.exists(storage.join(path, "saved_model.pb")):
            raise ActrecogError(f"{path}: {argument} is an exported model (export.py's "
                                f"LiteRT or SavedModel), not a folder train.py can use")


def check_model_dir(model_dir: str, wanted: dict) -> bool:
    """Compares the run MODEL_DIR holds, if any, with this run (reads only).

    A run is a checkpoint: a ``run_config.json`` without one (a run refused or
    killed before its first checkpoint) holds nothing to resume or protect, and
    this run replaces it.

    Returns:
        True when MODEL_DIR already holds a run of this model and shape.

    Raises:
        ActrecogError: MODEL_DIR holds checkpoints of another model or shape (saying
            which), or checkpoints without a ``run_config.json``.
    """
    path = storage.join(model_dir, RUN_CONFIG_NAME)
    has_checkpoint = bool(tf.train.latest_checkpoint(storage.join(model_dir,
                                                                  CHECKPOINT_FOLDER)))
    if not has_checkpoint:
        return False
    if not storage.exists(path):
        raise ActrecogError(f"{model_dir}: holds checkpoints without {RUN_CONFIG_NAME}; "
                            f"use another MODEL_DIR")
    stored = storage.read_json(path, "run configuration")
    # The class order too: scoring maps the Test JSON's names by run_config.json's.
    for key in ("model_name", "window_shape", "num_classes", "classes", "frames"):
        if stored.get(key) != wanted.get(key):
            raise ActrecogError(
                f"{model_dir}: holds checkpoints of model {stored.get('model_name')} with "
                f"window {stored.get('window_shape')} and {stored.get('num_classes')} "
                f"classes, not {wanted['model_name']} with window {wanted['window_shape']} "
                f"and {wanted['num_classes']} classes ({key} differs); use another MODEL_DIR")
    return True


def claim_model_dir(setup: "_RunSetup") -> None:
    """The run's first write, once every check has passed: creates MODEL_DIR, clears
    temporaries of a killed run and writes ``run_config.json`` for a new run.

    Raises:
        ActrecogError: MODEL_DIR cannot be created or written.
    """
    if not setup.chief:
        return
    storage.check_writable(setup.model_dir)
    storage.remove_temporaries(setup.model_dir)
    if not setup.resuming:
        storage.write_json_atomic(storage.join(setup.model_dir, RUN_CONFIG_NAME),
                                  setup.run_config)


# --------------------------------------------------------------------------- datasets

def _pipeline_config(config: TrainConfig, seed: int, training: bool):
    # Deterministic element order always: a resumed run must see the same batches,
    # and every worker of a cluster must see the same stream to take its share.
    # The shards were hashed once before training; not again every epoch.
    return pipeline.PipelineConfig(batch_size=config.batch_size, training=training,
                                   shuffle_buffer=config.shuffle_buffer, seed=seed,
                                   # Eval: the pipeline itself leaves these out.
                                   augment=config.augment,
                                   color_jitter=config.color_jitter,
                                   zoom_jitter=config.zoom_jitter,
                                   deterministic=True,
                                   verify_sha256=False)


def make_train_dataset(config: TrainConfig, manifest: manifest_lib.Manifest, epoch: int,
                       steps_per_epoch: int, skip_steps: int = 0,
                       shard_uris: Optional[Sequence[str]] = None):
    """The rest of one epoch's Train batches, in the epoch's fixed order.

    Args:
        epoch: 0-based epoch (picks the shuffle/augmentation seed).
        steps_per_epoch: batches in the epoch (may exceed one pass: repeats).
        skip_steps: batches already consumed (resume).
        shard_uris: the Train shards, already checked this run (None: check now).

    Returns:
        ``tf.data.Dataset`` of ``steps_per_epoch - skip_steps`` global batches
        ``((B, L, D, D, C) float32, (B, K) float32)``.
    """
    dataset = pipeline.make_dataset(config.dataset_dir, TRAIN_SPLIT, manifest,
                                    _pipeline_config(config, epoch_seed(config.seed, epoch),
                                                     training=True),
                                    shard_uris=shard_uris)
    return dataset.repeat().skip(skip_steps).take(steps_per_epoch - skip_steps)


def make_eval_dataset(config: TrainConfig, manifest: manifest_lib.Manifest, steps: int,
                      shard_uris: Optional[Sequence[str]] = None):
    """The first ``steps`` Eval batches, in record order, unaugmented."""
    dataset = pipeline.make_dataset(config.dataset_dir, EVAL_SPLIT, manifest,
                                    _pipeline_config(config, config.seed, training=False),
                                    shard_uris=shard_uris)
    return dataset.take(steps)


def _distribute(strategy, dataset):
    options = tf.data.Options()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Every worker reads the same batches and keeps its replicas' share of each,
        # so the step order does not depend on how many files or workers there are.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


# --------------------------------------------------------------------------- files

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


def _save_weights(model, model_dir: str, name: str) -> None:
    """Keras writes .h5 to local files only: write locally, then copy atomically."""
    local_dir = tempfile.mkdtemp(prefix="actrecog-weights-")
    try:
        local = os.path.join(local_dir, name)
        model.save_weights(local)
        target = storage.join(model_dir, name)
        with storage.atomic_path(target) as temp:
            storage.copy_file(local, temp)
    finally:
        shutil.rmtree(local_dir, ignore_errors=True)


def plot_history(history: List[dict], model_name: str) -> bytes:
    """Loss and accuracy curves per epoch, as PNG bytes (headless)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    epochs = [entry["epoch"] for entry in history]
    figure, (loss_axes, accuracy_axes) = pyplot.subplots(1, 2, figsize=(10, 4))
    for axes, key in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.plot(epochs, [entry[f"train_{key}"] for entry in history], "o-", label="train")
        values = [entry.get(f"eval_{key}") for entry in history]
        if any(value is not None for value in values):
            axes.plot(epochs, [math.nan if v is None else v for v in values], "o-",
                      label="eval")
        axes.set_xlabel("epoch")
        axes.set_ylabel(key)
        axes.set_title(f"{model_name} {key}")
        axes.legend()
        axes.grid(True, alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    pyplot.close(figure)
    return buffer.getvalue()


def _write_history_files(model_dir: str, model_name: str, history: List[dict]) -> None:
    storage.write_json_atomic(storage.join(model_dir, HISTORY_NAME), history)
    if history:
        storage.write_bytes_atomic(storage.join(model_dir, history_plot_name(model_name)),
                                   plot_history(history, model_name))


def _scalar_metadata():
    """What TensorBoard's scalar plugin tags its summaries with.

    ``tf.summary.scalar`` needs the ``tensorboard`` package, which TensorFlow no
    longer installs; ``tf.summary.write`` with this metadata writes the same event.
    """
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
    return metadata


def write_scalar(writer, name: str, value: float, step: int) -> None:
    """Writes one TensorBoard scalar (float32) at ``step``."""
    with writer.as_default():
        tf.summary.write(name, tf.constant(value, tf.float32), step=step,
                         metadata=_scalar_metadata())


# --------------------------------------------------------------------------- the loop

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


def _loss_and_correct(model, global_batch: int, labels, probabilities):
    """One step's ``(loss, correct)``: ``labels`` and ``probabilities`` ``(B, K)`` float32.

    Cross-entropy averaged over the GLOBAL batch plus the L2 penalties scaled per
    replica, so summing over replicas gives the true batch loss; ``correct`` is the
    float32 count of right top-1 predictions.
    """
    per_example = keras.losses.categorical_crossentropy(labels, probabilities)
    loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
    if model.losses:
        loss += tf.nn.scale_regularization_loss(
            tf.add_n([tf.cast(term, tf.float32) for term in model.losses]))
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probabilities, axis=-1),
                                             tf.argmax(labels, axis=-1)), tf.float32))
    return loss, correct


def make_step_loops(strategy, model, optimizer, global_batch: int,
                    deterministic: bool = False):
    """The compiled train and eval loops (also used by bench/train_step.py).

    Args:
        strategy: the distribution strategy the model and optimizer were built in.
        model: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32 probabilities.
        optimizer: a Keras optimizer (or LossScaleOptimizer) built for the model.
        global_batch: global batch size (the loss is averaged over it).
        deterministic: compile each step with XLA (``--deterministic``, one replica;
            see :mod:`coreLib.training.determinism`).

    Returns:
        ``(train_loop, eval_loop)``: ``tf.function`` s taking a distributed iterator
        of ``(pixels, one-hot)`` batches and a scalar int step count; each runs that
        many steps under ``strategy.run`` and returns ``{"loss_sum", "correct"}``
        float64 totals over the steps and replicas.
    """
    def loss_and_correct(labels, probabilities):
        return _loss_and_correct(model, global_batch, labels, probabilities)

    def train_step(inputs):
        pixels, labels = inputs
        with tf.GradientTape() as tape:
            probabilities = model(pixels, training=True)
            loss, correct = loss_and_correct(labels, probabilities)
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


@dataclass(frozen=True)
class _RunSetup:
    """What the data, the strategy and MODEL_DIR fix before any model is built."""
    strategy: object
    manifest: manifest_lib.Manifest
    model_dir: str
    chief: bool
    steps_per_epoch: int
    eval_steps: int
    shard_uris: Dict[str, Tuple[str, ...]]
    run_config: dict
    resuming: bool


def _prepare_run(config: TrainConfig):
    """Strategy, manifest, shard checks (hashed once per run), batch counts, MODEL_DIR.

    Returns:
        ``(config, setup)``: the config as the run uses it (a 1.0.4 folder without
        ``TFRECORD/Eval`` trains without Eval passes) and the :class:`_RunSetup`.
    """
    # First: multi-worker collectives must be configured before any eager op runs.
    strategy = strategy_lib.make_strategy(config.strategy, config.tpu)
    if config.deterministic and strategy.num_replicas_in_sync > 1:
        determinism.configure_replicated()
    check_not_exported_model(config.dataset_dir, config.model_dir)
    manifest = legacy_records.load_manifest_or_legacy(config.dataset_dir,
                                                      config.legacy_classes, note=print)
    if legacy_records.is_legacy_manifest(manifest) and EVAL_SPLIT not in manifest.splits:
        config = replace(config, eval=False)   # 1.0.4 Eval was optional (moved by hand)
    splits = [TRAIN_SPLIT] + ([EVAL_SPLIT] if config.eval else [])
    split_sizes = {split: _split_records(config.dataset_dir, manifest, split)
                   for split in splits}
    # Hashed once per run; the epochs and Eval passes reuse the checked URIs.
    shard_uris = {split: tuple(shards.check_shards(config.dataset_dir, manifest, split,
                                                   verify_sha256=True))
                  for split in splits}
    check_batch_size(config.batch_size, strategy.num_replicas_in_sync, split_sizes)
    steps_per_epoch = config.steps_per_epoch or split_sizes[TRAIN_SPLIT] // config.batch_size
    eval_steps = 0
    if config.eval:
        eval_steps = split_sizes[EVAL_SPLIT] // config.batch_size
        eval_steps = min(eval_steps, config.eval_steps or eval_steps)

    # Reads only: nothing is written before every check (the model's build too) passed.
    wanted = run_config_of(config, manifest)
    model_dir = storage.absolute(config.model_dir)
    resuming = check_model_dir(model_dir, wanted)
    return config, _RunSetup(strategy, manifest, model_dir, strategy_lib.is_chief(strategy),
                             steps_per_epoch, eval_steps, shard_uris, wanted, resuming)


class TrainingState:
    """The model, the optimizer and every counter a checkpoint holds.

    A resumed run continues from exactly this state: epoch, step in the epoch,
    global step, best loss so far, the epoch's float64 accumulators (loss sum,
    correct predictions, seconds) and the history of finished epochs.
    """

    def __init__(self, config: TrainConfig, setup: _RunSetup):
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


class RunOutputs:
    """The chief's files besides checkpoints: weights, history, TensorBoard.

    Every end-of-epoch or end-of-run output goes through here, so adding a metric
    or a hook touches this class only. On non-chief workers every method is a no-op.
    """

    def __init__(self, setup: _RunSetup, model_name: str):
        self.model_dir = setup.model_dir
        self.model_name = model_name
        self.writers = None
        if setup.chief:
            self.writers = {name: tf.summary.create_file_writer(
                storage.join(self.model_dir, LOGS_FOLDER, name)) for name in ("train", "eval")}

    def step_loss(self, loss: float, global_step: int) -> None:
        if self.writers:
            write_scalar(self.writers["train"], "step_loss", loss, global_step)

    def history(self, history: List[dict]) -> None:
        if self.writers:
            _write_history_files(self.model_dir, self.model_name, history)

    def epoch_scalars(self, entry: dict) -> None:
        if not self.writers:
            return
        for name in ("train", "eval"):
            if entry[f"{name}_loss"] is None:
                continue
            write_scalar(self.writers[name], "loss", entry[f"{name}_loss"], entry["epoch"])
            write_scalar(self.writers[name], "accuracy", entry[f"{name}_accuracy"],
                         entry["epoch"])
            if name == "train" and entry["sequences_per_second"]:
                write_scalar(self.writers[name], "sequences_per_second",
                             entry["sequences_per_second"], entry["epoch"])
            self.writers[name].flush()

    def weights(self, model, name: str) -> None:
        if self.writers:
            _save_weights(model, self.model_dir, name)

    def close(self) -> None:
        for writer in (self.writers or {}).values():
            writer.close()


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


def _train_epoch(config: TrainConfig, setup: _RunSetup, state: TrainingState,
                 train_loop, outputs: RunOutputs, epoch: int, progress: bool) -> dict:
    """Runs (the rest of) one epoch's Train steps; returns its history entry's Train part."""
    steps_per_epoch = setup.steps_per_epoch
    step = state.begin_epoch()
    iterator = iter(_distribute(setup.strategy, make_train_dataset(
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


def _evaluate(config: TrainConfig, setup: _RunSetup, eval_loop):
    """One Eval pass: ``(mean loss, accuracy)`` over ``setup.eval_steps`` batches."""
    iterator = iter(_distribute(setup.strategy, make_eval_dataset(
        config, setup.manifest, setup.eval_steps, shard_uris=setup.shard_uris[EVAL_SPLIT])))
    loss_sum, correct = 0.0, 0.0
    for chunk in _chunks(config.steps_per_loop, 0, setup.eval_steps):
        result = _call_loop(config, eval_loop, EVAL_SPLIT, iterator, chunk)
        loss_sum += float(result["loss_sum"])
        correct += float(result["correct"])
    return loss_sum / setup.eval_steps, correct / (setup.eval_steps * config.batch_size)


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
    config, setup = _prepare_run(config)
    state = TrainingState(config, setup)   # builds the model: the last check
    claim_model_dir(setup)
    resumed_from_step = state.restore_latest()
    train_loop, eval_loop = make_step_loops(setup.strategy, state.model, state.optimizer,
                                            config.batch_size, config.deterministic)
    outputs = RunOutputs(setup, config.model_name)
    # A resumed run may have been killed after its checkpoint but before these.
    outputs.history(state.history)
    try:
        for epoch in range(int(state.epoch.numpy()), config.epochs):
            entry = _train_epoch(config, setup, state, train_loop, outputs, epoch, progress)
            if config.eval:
                entry["eval_loss"], entry["eval_accuracy"] = _evaluate(config, setup,
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
