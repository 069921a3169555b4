"""The datasets of a training run: each epoch's Train batches, the Eval batches.

The Train order of an epoch is a pure function of (seed, epoch)
(:func:`config.epoch_seed`), so a resumed run rebuilds the epoch's dataset and
skips the batches its checkpoint has already consumed.
"""

from typing import Optional, Sequence

from coreLib import storage
from coreLib.data import manifest as manifest_lib
from coreLib.training import pipeline
from coreLib.training.config import EVAL_SPLIT, TRAIN_SPLIT, TrainConfig, epoch_seed

tf = storage.tf


def pipeline_config(config: TrainConfig, seed: int,
                    training: bool) -> pipeline.PipelineConfig:
    """The :class:`pipeline.PipelineConfig` of a run's Train (``training``) or Eval batches."""
    # Deterministic element order always: a resumed run must see the same batches,
    # and every worker of a cluster must see the same stream to take its share.
    # The shards were hashed once before training; not again every epoch.
    return pipeline.PipelineConfig(batch_size=config.batch_size, training=training,
                                   shuffle_buffer=config.shuffle_buffer, seed=seed,
                                   # Eval: the pipeline itself leaves these out.
                                   augment=config.augment,
                                   color_jitter=config.color_jitter,
                                   zoom_jitter=config.zoom_jitter,
                                   mixup=config.mixup,
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
                                    pipeline_config(config, epoch_seed(config.seed, epoch),
                                                     training=True),
                                    shard_uris=shard_uris)
    return dataset.repeat().skip(skip_steps).take(steps_per_epoch - skip_steps)


def make_eval_dataset(config: TrainConfig, manifest: manifest_lib.Manifest, steps: int,
                      shard_uris: Optional[Sequence[str]] = None):
    """The first ``steps`` Eval batches, in record order, unaugmented."""
    dataset = pipeline.make_dataset(config.dataset_dir, EVAL_SPLIT, manifest,
                                    pipeline_config(config, config.seed, training=False),
                                    shard_uris=shard_uris)
    return dataset.take(steps)


def distribute_dataset(strategy, dataset):
    """``dataset`` split over the strategy's replicas (a distributed dataset)."""
    options = tf.data.Options()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Every worker reads the same batches and keeps its replicas' share of each,
        # so the step order does not depend on how many files or workers there are.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
    return strategy.experimental_distribute_dataset(dataset.with_options(options))
