"""What the data, the strategy and MODEL_DIR fix before any model is built.

:func:`prepare_run` makes the strategy, loads the manifest, hashes the shards once,
counts the batches and reads MODEL_DIR; it writes nothing.
"""

from dataclasses import dataclass, replace
from typing import Dict, Tuple

from coreLib import models, storage
from coreLib.data import manifest as manifest_lib
from coreLib.preprocessing import legacy_records, shards
from coreLib.training import determinism, run_folder
from coreLib.training import strategy as strategy_lib
from coreLib.training.config import EVAL_SPLIT, TRAIN_SPLIT, TrainConfig
from coreLib.errors import ActrecogError


def _split_records(dataset_dir: str, manifest: manifest_lib.Manifest, split: str) -> int:
    info = manifest.splits.get(split)
    if info is None or not info.shards:
        raise ActrecogError(f"{dataset_dir}: the manifest lists no {split} records")
    return info.num_records


def check_frame_side(model_name: str, manifest: manifest_lib.Manifest,
                     dataset_dir: str) -> None:
    """Refuses frames smaller than the model's registry minimum, before the model is
    built (the builders refuse them too).

    Raises:
        ActrecogError: naming DATASET_DIR, the model, the side and the minimum.
    """
    minimum = models.get_model_record(model_name).min_image_dim
    if manifest.image_dim < minimum:
        raise ActrecogError(f"{dataset_dir}: {model_name}: image_dim {manifest.image_dim} "
                            f"is too small; {model_name} needs image_dim >= {minimum} "
                            f"(main.py --image-dim)")


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


@dataclass(frozen=True)
class RunSetup:
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


def prepare_run(config: TrainConfig) -> Tuple[TrainConfig, RunSetup]:
    """Strategy, manifest, shard checks (hashed once per run), batch counts, MODEL_DIR,
    the model's minimum frame side.

    Returns:
        ``(config, setup)``: the config as the run uses it (a 1.0.4 folder without
        ``TFRECORD/Eval`` trains without Eval passes) and the :class:`RunSetup`.
    """
    # First: multi-worker collectives must be configured before any eager op runs.
    strategy = strategy_lib.make_strategy(config.strategy, config.tpu)
    if config.deterministic and strategy.num_replicas_in_sync > 1:
        determinism.configure_replicated()
    run_folder.check_not_exported_model(config.dataset_dir, config.model_dir)
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
    wanted = run_folder.run_config_of(config, manifest)
    model_dir = storage.absolute(config.model_dir)
    resuming = run_folder.check_model_dir(model_dir, wanted)
    # Where the model's build refused such frames before: MODEL_DIR's refusals first.
    check_frame_side(config.model_name, manifest, config.dataset_dir)
    return config, RunSetup(strategy, manifest, model_dir, strategy_lib.is_chief(strategy),
                             steps_per_epoch, eval_steps, shard_uris, wanted, resuming)
