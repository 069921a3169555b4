"""The distributed custom training loop behind train.py and debug.py.

One loop for every strategy (see :mod:`coreLib.strategy`): the model, optimizer and
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
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from coreLib import manifest as manifest_lib
from coreLib import models, pipeline, storage
from coreLib import optimizer as optimizer_lib
from coreLib import strategy as strategy_lib
from coreLib.errors import ActrecogError

tf = storage.tf

import keras  # noqa: E402  (after the quiet TensorFlow import)

RUN_CONFIG_NAME = "run_config.json"
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
        lr: Adam learning rate (the first step's under ``lr_schedule`` cosine).
        lr_schedule: ``constant`` or ``cosine`` (decays to 0 over all the epochs'
            steps).
        mixed_precision: bfloat16 on TPU/CPU, float16 with loss scaling on GPU.
        checkpoint_every: also checkpoint every this many steps (0 = epoch ends only).
        shuffle_buffer: Train shuffle buffer, in windows.
        seed: seeds weights, shuffling and augmentation.
        eval: run an Eval pass after every epoch.
        eval_steps: Eval batches per pass; None = one pass over Eval.
        deterministic: deterministic TensorFlow ops (slower; for exact resumes).
        augment: online rotation/flip augmentation of Train (records stored
            already augmented are never augmented again).
        bn_momentum: momentum of the models' BatchNorm moving statistics.
        color_jitter: photometric jitter strength of Train windows (0 = off; see
            ``pipeline.jitter_windows``).
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
    lr: float = 1e-4
    lr_schedule: str = "constant"
    mixed_precision: bool = False
    checkpoint_every: int = 0
    shuffle_buffer: int = 1024
    seed: int = 0
    eval: bool = True
    eval_steps: Optional[int] = None
    deterministic: bool = False
    augment: bool = True
    bn_momentum: float = models.BN_MOMENTUM
    color_jitter: float = 0.0

    def __post_init__(self):
        models.get_model_builder(self.model_name)
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
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.lr_schedule not in optimizer_lib.LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of "
                             f"{', '.join(optimizer_lib.LR_SCHEDULES)}, "
                             f"got {self.lr_schedule!r}")
        if not 0 <= self.color_jitter < 1:
            raise ValueError(f"color_jitter must be in [0, 1), got {self.color_jitter!r}")
        if not 0 < self.bn_momentum < 1:
            raise ValueError(f"bn_momentum must be between 0 and 1, got {self.bn_momentum!r}")


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
    return {"model_name": config.model_name,
            "window_shape": list(manifest.window_shape),
            "num_classes": manifest.num_classes,
            "classes": list(manifest.classes)}


def check_model_dir(model_dir: str, wanted: dict) -> bool:
    """Compares MODEL_DIR's ``run_config.json`` with this run.

    Returns:
        True when MODEL_DIR already holds a run of this model and shape.

    Raises:
        ActrecogError: MODEL_DIR holds another model or shape (saying which), or
            checkpoints without a ``run_config.json``.
    """
    path = storage.join(model_dir, RUN_CONFIG_NAME)
    if not storage.exists(path):
        if tf.train.latest_checkpoint(storage.join(model_dir, CHECKPOINT_FOLDER)):
            raise ActrecogError(f"{model_dir}: holds checkpoints without {RUN_CONFIG_NAME}; "
                                f"use another MODEL_DIR")
        return False
    stored = storage.read_json(path, "run configuration")
    for key in ("model_name", "window_shape", "num_classes"):
        if stored.get(key) != wanted[key]:
            raise ActrecogError(
                f"{model_dir}: holds checkpoints of model {stored.get('model_name')} with "
                f"window {stored.get('window_shape')} and {stored.get('num_classes')} "
                f"classes, not {wanted['model_name']} with window {wanted['window_shape']} "
                f"and {wanted['num_classes']} classes ({key} differs); use another MODEL_DIR")
    return True


# --------------------------------------------------------------------------- datasets

def _pipeline_config(config: TrainConfig, seed: int, training: bool):
    # Deterministic element order always: a resumed run must see the same batches,
    # and every worker of a cluster must see the same stream to take its share.
    # The shards were hashed once before training; not again every epoch.
    return pipeline.PipelineConfig(batch_size=config.batch_size, training=training,
                                   shuffle_buffer=config.shuffle_buffer, seed=seed,
                                   augment=training and config.augment,
                                   color_jitter=config.color_jitter if training else 0.0,
                                   deterministic=True,
                                   verify_sha256=False)


def make_train_dataset(config: TrainConfig, manifest: manifest_lib.Manifest, epoch: int,
                       steps_per_epoch: int, skip_steps: int = 0):
    """The rest of one epoch's Train batches, in the epoch's fixed order.

    Args:
        epoch: 0-based epoch (picks the shuffle/augmentation seed).
        steps_per_epoch: batches in the epoch (may exceed one pass: repeats).
        skip_steps: batches already consumed (resume).

    Returns:
        ``tf.data.Dataset`` of ``steps_per_epoch - skip_steps`` global batches
        ``((B, L, D, D, C) float32, (B, K) float32)``.
    """
    dataset = pipeline.make_dataset(config.dataset_dir, TRAIN_SPLIT, manifest,
                                    _pipeline_config(config, epoch_seed(config.seed, epoch),
                                                     training=True))
    return dataset.repeat().skip(skip_steps).take(steps_per_epoch - skip_steps)


def make_eval_dataset(config: TrainConfig, manifest: manifest_lib.Manifest, steps: int):
    """The first ``steps`` Eval batches, in record order, unaugmented."""
    dataset = pipeline.make_dataset(config.dataset_dir, EVAL_SPLIT, manifest,
                                    _pipeline_config(config, config.seed, training=False))
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
            tf.io.gfile.copy(local, temp, overwrite=True)
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
    """A tqdm bar per epoch (loss, accuracy, sequences/s) on the chief only."""

    def __init__(self, enabled: bool, epoch: int, epochs: int, total: int, initial: int):
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step", leave=False,
                            desc=f"epoch {epoch}/{epochs}", dynamic_ncols=True)

    def update(self, steps: int, loss: float, accuracy: float, rate: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", accuracy=f"{accuracy:.3f}",
                                 seq_per_s=f"{rate:.0f}", refresh=False)
            self.bar.update(steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def make_step_loops(strategy, model, optimizer, global_batch: int):
    """The compiled train and eval loops (also used by bench/train_step.py).

    Args:
        strategy: the distribution strategy the model and optimizer were built in.
        model: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32 probabilities.
        optimizer: a Keras optimizer (or LossScaleOptimizer) built for the model.
        global_batch: global batch size (the loss is averaged over it).

    Returns:
        ``(train_loop, eval_loop)``: ``tf.function`` s taking a distributed iterator
        of ``(pixels, one-hot)`` batches and a scalar int step count; each runs that
        many steps under ``strategy.run`` and returns ``{"loss_sum", "correct"}``
        float64 totals over the steps and replicas.
    """
    def loss_and_correct(labels, probabilities):
        # Cross-entropy averaged over the GLOBAL batch plus the L2 penalties scaled
        # per replica, so summing over replicas gives the true batch loss.
        per_example = keras.losses.categorical_crossentropy(labels, probabilities)
        loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        if model.losses:
            loss += tf.nn.scale_regularization_loss(
                tf.add_n([tf.cast(term, tf.float32) for term in model.losses]))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probabilities, axis=-1),
                                                 tf.argmax(labels, axis=-1)), tf.float32))
        return loss, correct

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
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    # First: multi-worker collectives must be configured before any eager op runs.
    strategy = strategy_lib.make_strategy(config.strategy, config.tpu)
    manifest = manifest_lib.load_manifest(config.dataset_dir)
    splits = [TRAIN_SPLIT] + ([EVAL_SPLIT] if config.eval else [])
    split_sizes = {split: _split_records(config.dataset_dir, manifest, split)
                   for split in splits}
    for split in splits:
        pipeline.check_shards(config.dataset_dir, manifest, split, verify_sha256=True)

    num_replicas = strategy.num_replicas_in_sync
    check_batch_size(config.batch_size, num_replicas, split_sizes)
    steps_per_epoch = config.steps_per_epoch or split_sizes[TRAIN_SPLIT] // config.batch_size
    eval_steps = 0
    if config.eval:
        eval_steps = split_sizes[EVAL_SPLIT] // config.batch_size
        eval_steps = min(eval_steps, config.eval_steps or eval_steps)

    chief = strategy_lib.is_chief(strategy)
    wanted = run_config_of(config, manifest)
    model_dir = storage.absolute(config.model_dir)
    if chief:
        storage.check_writable(model_dir)
        storage.remove_temporaries(model_dir)
    if not check_model_dir(model_dir, wanted) and chief:
        storage.write_json_atomic(storage.join(model_dir, RUN_CONFIG_NAME), wanted)

    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        with _dtype_policy(_policy_name(config)):
            model = models.build_model(config.model_name, manifest.seq_len,
                                       manifest.image_dim, manifest.channels,
                                       manifest.num_classes,
                                       bn_momentum=config.bn_momentum)
        optimizer = optimizer_lib.make_optimizer(
            optimizer_lib.learning_rate_schedule(config.lr, config.lr_schedule,
                                                 config.epochs * steps_per_epoch),
            loss_scaling=_policy_name(config) == "mixed_float16")
        optimizer.build(model.trainable_variables)
        # The epoch accumulators (the "metrics"): reduced sums over the replicas.
        train_loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        train_correct = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        epoch_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    step_in_epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    global_step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    best_loss_var = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
    history_var = tf.Variable("[]", dtype=tf.string, trainable=False)

    run_state = dict(
        model=model, optimizer=optimizer, epoch=epoch_var, step_in_epoch=step_in_epoch_var,
        global_step=global_step_var, best_loss=best_loss_var, history=history_var,
        train_loss_sum=train_loss_sum, train_correct=train_correct,
        epoch_seconds=epoch_seconds)
    checkpoint = tf.train.Checkpoint(random_states=random_state_variables(model),
                                     **run_state)
    checkpoint_dir = storage.join(model_dir, CHECKPOINT_FOLDER)
    # Non-chief workers must save too (saving may run collectives), but elsewhere.
    scratch_dir = None if chief else tempfile.mkdtemp(
        prefix=f"actrecog-{strategy_lib.worker_id(strategy)}-")
    manager = tf.train.CheckpointManager(checkpoint, scratch_dir or checkpoint_dir,
                                         max_to_keep=MAX_CHECKPOINTS_KEPT)
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest:
        restorer = checkpoint
        if not any(name.startswith("random_states/")
                   for name, _ in tf.train.list_variables(latest)):
            # Written before the seed states were checkpointed (or DUMMY, which has
            # none): resumes with the states as built, as such runs always did.
            restorer = tf.train.Checkpoint(**run_state)
        restorer.restore(latest).assert_existing_objects_matched()
    resumed_from_step = int(global_step_var.numpy())
    history = json.loads(history_var.numpy().decode("utf-8"))

    train_steps, eval_steps_fn = make_step_loops(strategy, model, optimizer,
                                                 config.batch_size)
    global_batch = config.batch_size

    writers = None
    if chief:
        writers = {name: tf.summary.create_file_writer(storage.join(model_dir, LOGS_FOLDER,
                                                                    name))
                   for name in ("train", "eval")}
        # A resumed run may have been killed after its checkpoint but before these.
        _write_history_files(model_dir, config.model_name, history)

    def call_loop(loop_fn, split, iterator, num_steps):
        try:
            return loop_fn(iterator, tf.constant(num_steps))
        except tf.errors.InvalidArgumentError as error:
            # The pipeline asserts every record's shape; a bad record surfaces here.
            reason = (error.message or str(error)).splitlines()[0]
            raise ActrecogError(f"{config.dataset_dir}: a {split} record disagrees with "
                                f"the manifest ({reason}); run debug.py "
                                f"{config.dataset_dir} CHECK to find it") from None

    def save_checkpoint():
        manager.save(checkpoint_number=int(global_step_var.numpy()))

    def run_eval():
        iterator = iter(_distribute(strategy, make_eval_dataset(config, manifest,
                                                                eval_steps)))
        loss_sum, correct, done = 0.0, 0.0, 0
        while done < eval_steps:
            chunk = min(config.steps_per_loop, eval_steps - done)
            result = call_loop(eval_steps_fn, EVAL_SPLIT, iterator, chunk)
            loss_sum += float(result["loss_sum"])
            correct += float(result["correct"])
            done += chunk
        return loss_sum / eval_steps, correct / (eval_steps * global_batch)

    try:
        for epoch in range(int(epoch_var.numpy()), config.epochs):
            step = int(step_in_epoch_var.numpy())
            if step == 0:
                train_loss_sum.assign(0.0)
                train_correct.assign(0.0)
                epoch_seconds.assign(0.0)
            iterator = iter(_distribute(strategy, make_train_dataset(
                config, manifest, epoch, steps_per_epoch, skip_steps=step)))
            bar = _EpochProgress(progress and chief, epoch + 1, config.epochs,
                                 steps_per_epoch, step)
            started, started_seconds = time.perf_counter(), float(epoch_seconds.numpy())
            steps_this_run = 0
            try:
                while step < steps_per_epoch:
                    chunk = min(config.steps_per_loop, steps_per_epoch - step)
                    global_step = int(global_step_var.numpy())
                    if config.checkpoint_every:
                        to_checkpoint = config.checkpoint_every - global_step % config.checkpoint_every
                        chunk = min(chunk, to_checkpoint)
                    result = call_loop(train_steps, TRAIN_SPLIT, iterator, chunk)
                    train_loss_sum.assign_add(float(result["loss_sum"]))
                    train_correct.assign_add(float(result["correct"]))
                    step += chunk
                    steps_this_run += chunk
                    step_in_epoch_var.assign(step)
                    global_step_var.assign_add(chunk)
                    elapsed = time.perf_counter() - started
                    epoch_seconds.assign(started_seconds + elapsed)
                    bar.update(chunk, float(train_loss_sum.numpy()) / step,
                               float(train_correct.numpy()) / (step * global_batch),
                               steps_this_run * global_batch / max(elapsed, 1e-9))
                    if writers:
                        write_scalar(writers["train"], "step_loss",
                                     float(result["loss_sum"]) / chunk,
                                     int(global_step_var.numpy()))
                    if (config.checkpoint_every and step < steps_per_epoch and
                            int(global_step_var.numpy()) % config.checkpoint_every == 0):
                        save_checkpoint()
            finally:
                bar.close()
            train_seconds = time.perf_counter() - started
            entry = {
                "epoch": epoch + 1,
                "train_loss": float(train_loss_sum.numpy()) / steps_per_epoch,
                "train_accuracy": float(train_correct.numpy()) / (steps_per_epoch * global_batch),
                "eval_loss": None,
                "eval_accuracy": None,
                "seconds": float(epoch_seconds.numpy()),
                "sequences_per_second": (steps_this_run * global_batch / train_seconds
                                         if train_seconds > 0 else None),
            }
            if config.eval:
                entry["eval_loss"], entry["eval_accuracy"] = run_eval()
            score = entry["eval_loss"] if config.eval else entry["train_loss"]
            if score < float(best_loss_var.numpy()):
                best_loss_var.assign(score)
                if chief:
                    _save_weights(model, model_dir, best_weights_name(config.model_name))
            history.append(entry)
            history_var.assign(json.dumps(history))
            epoch_var.assign(epoch + 1)
            step_in_epoch_var.assign(0)
            save_checkpoint()
            if chief:
                _write_history_files(model_dir, config.model_name, history)
                for name, prefix in (("train", "train"), ("eval", "eval")):
                    if entry[f"{prefix}_loss"] is None:
                        continue
                    write_scalar(writers[name], "loss", entry[f"{prefix}_loss"], epoch + 1)
                    write_scalar(writers[name], "accuracy", entry[f"{prefix}_accuracy"],
                                 epoch + 1)
                    if name == "train" and entry["sequences_per_second"]:
                        write_scalar(writers[name], "sequences_per_second",
                                     entry["sequences_per_second"], epoch + 1)
                    writers[name].flush()
            if progress and chief:
                print(format_epoch(entry, config.epochs), flush=True)
        if chief:
            _save_weights(model, model_dir, final_weights_name(config.model_name))
    finally:
        if writers:
            for writer in writers.values():
                writer.close()
        if scratch_dir:
            shutil.rmtree(scratch_dir, ignore_errors=True)
    return TrainingResult(model=model, history=history,
                          global_step=int(global_step_var.numpy()),
                          num_replicas=num_replicas, is_chief=chief,
                          resumed_from_step=resumed_from_step, manifest=manifest)


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
