"""The tf.data input pipeline over the window shards (local folders or ``gs://``).

Shape of the pipeline (Train; Eval skips the shuffles, repeat and augmentation)::

    shard URIs -> shuffle files -> parallel interleave of TFRecordDataset readers
    -> shuffle records -> repeat -> batch (raw records) -> enumerate
    -> map(parse the batch in one op, draw one (rotation, flip) per window,
           one batched projective transform, scale to [0, 1], the zoom and colour
           jitter when asked, one-hot labels)
    -> prefetch

Why batch before parsing: parsing, decoding and transforming 128 windows in one
op each costs a fraction of 128 per-record maps (the per-element overhead of
tf.data and of the op launches dominates at this window size).

Online augmentation draws, for every window, one of the original tool's 32
variants (rotation 0, 5, ..., 35 degrees x flip id 0-3) with stateless random ops
seeded by ``(seed, batch index)``, so a run with a seed is repeatable, and applies
it bit-identically to :func:`coreLib.preprocessing.augment.transform_windows`, the
very op main.py ``--offline-augment`` stores its copies with: both give identical
pixels. The kernels are in :mod:`coreLib.training.online_augment`, the per-batch
map (parse, check, augment, one-hot) in :mod:`coreLib.training.batch_parsing`.

The 2019 tool's records (float32 ``feats`` + ``label``) are read too. Their format
is detected from the first record of each file, never from a flag; they were
stored already augmented, so they are not augmented again.
"""

import random
from dataclasses import dataclass, replace
from typing import Optional, Sequence

from coreLib import storage
from coreLib.preprocessing import augment, records, shards
from coreLib.errors import ActrecogError
from coreLib.data.manifest import Manifest
from coreLib.training import batch_parsing

tf = storage.tf

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 6400      # the 2019 notebooks' buffer
# Bytes each TFRecord reader buffers; large reads keep gs:// round trips few.
READ_BUFFER_BYTES = 8 << 20


@dataclass(frozen=True)
class PipelineConfig:
    """How :func:`make_dataset` reads a split.

    Attributes:
        batch_size: global batch size B (the trainer splits it over replicas).
        training: True for Train: shuffle files and records, repeat for ever,
            augment online. False for Eval: one pass in stored order (within the
            interleave), no augmentation.
        shuffle_buffer: records held by the shuffle (the original used 6400).
        seed: seed of the shuffles and the augmentation draws; None = a fresh one
            per dataset (not repeatable).
        augment: online augmentation mode, a key of ``augment.AUGMENT_MODES``
            (``none``, ``rotate``, ``rotate-lr``, ``all`` = the 32 variants; True
            means ``all``, False ``none``): one variant drawn per window (Train
            only; ignored for records already stored augmented).
        color_jitter: strength s of the photometric jitter (Train only; 0 = off):
            per window, contrast about its mean times U(1-s, 1+s), each channel
            times U(1-s/2, 1+s/2), brightness plus U(-s/4, s/4), then clipped to
            [0, 1] (see :func:`online_augment.jitter_windows`).
        zoom_jitter: strength z of the geometric jitter (Train only; 0 = off): per
            window a zoom by U(1-z, 1+z) and a shift by U(-z/2, z/2) of the frame
            in x and y, edge pixels extended (see :func:`online_augment.zoom_windows`).
        mixup: Beta parameter alpha of mixup across subjects (Train only; 0 = off;
            see :func:`online_augment.mixup_windows`).
        drop_remainder: drop a last partial batch (static batch size, as TPUs and
            the distributed loop want).
        deterministic: keep the element order of the parallel interleave and maps
            (repeatable runs; slightly slower).
        cycle_length: shards read at once by the interleave.
        verify_sha256: hash every shard against the manifest before reading
            (:func:`make_dataset`; reads every byte once more).
    """
    batch_size: int
    training: bool
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER
    seed: Optional[int] = None
    augment: str = "all"
    color_jitter: float = 0.0
    zoom_jitter: float = 0.0
    mixup: float = 0.0
    drop_remainder: bool = True
    deterministic: bool = False
    cycle_length: int = 4
    verify_sha256: bool = True

    def __post_init__(self):
        object.__setattr__(self, "augment", augment.check_augment_mode(self.augment))
        for name in ("batch_size", "shuffle_buffer", "cycle_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PipelineConfig.{name} must be a positive integer, "
                                 f"got {value!r}")
        for name in ("color_jitter", "zoom_jitter"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"PipelineConfig.{name} must be in [0, 1), got {value!r}")
        if not 0 <= self.mixup < float("inf"):
            raise ValueError(f"PipelineConfig.mixup must be >= 0 and finite, "
                             f"got {self.mixup!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise ValueError(f"PipelineConfig.seed must be None or an integer >= 0, "
                             f"got {self.seed!r}")


def detect_files_format(files: Sequence[str], window_shape: Sequence[int]) -> shards.ShardFormat:
    """The common :class:`ShardFormat` of record files, from each file's first record.

    Raises:
        ActrecogError: no files, or a file unreadable, of another shape or of a
            different format than the first (naming it).
    """
    if not files:
        raise ActrecogError("no record files to read")
    first = shards.inspect_shard(files[0], window_shape)
    for path in files[1:]:
        other = shards.inspect_shard(path, window_shape)
        if other != first:
            raise ActrecogError(f"{path}: holds {other.format} records of {other.dtype}, "
                                f"but {files[0]} holds {first.format} records of "
                                f"{first.dtype}")
    return first


def make_dataset_from_files(files: Sequence[str], seq_len: int, image_dim: int,
                            channels: int, num_classes: int, config: PipelineConfig,
                            shard_format: Optional[shards.ShardFormat] = None,
                            input_context=None) -> "tf.data.Dataset":
    """The input pipeline over record files of either format.

    Args:
        files: TFRecord paths or URIs (window records, or the 2019 tool's).
        seq_len, image_dim, channels: the window shape ``(L, D, D, C)``.
        num_classes: length of the one-hot labels.
        config: batch size, shuffling, augmentation.
        shard_format: the files' format when already checked; None = detect it
            from the first record of every file.
        input_context: a ``tf.distribute.InputContext`` when called from
            ``strategy.distribute_datasets_from_function``: this pipeline then
            reads its share of the files and yields per-replica batches.

    Returns:
        ``tf.data.Dataset`` of ``(pixels, labels)``: ``(B, L, D, D, C)`` float32 in
        [0, 1] and ``(B, num_classes)`` float32 one-hot. Training datasets repeat
        for ever.

    Raises:
        ActrecogError: a file unreadable, empty, of another shape or format.
    """
    window_shape = (seq_len, image_dim, image_dim, channels)
    files = [str(path) for path in files]
    if shard_format is None:
        shard_format = detect_files_format(files, window_shape)
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2 ** 31)
    batch_size = config.batch_size
    file_dataset = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(config.batch_size)
        file_dataset = file_dataset.shard(input_context.num_input_pipelines,
                                          input_context.input_pipeline_id)
    if config.training:
        file_dataset = file_dataset.shuffle(len(files), seed=seed,
                                            reshuffle_each_iteration=True)
    dataset = file_dataset.interleave(
        lambda path: tf.data.TFRecordDataset(path, buffer_size=READ_BUFFER_BYTES),
        cycle_length=min(config.cycle_length, len(files)), block_length=1,
        num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)
    if config.training:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=seed + 1,
                                  reshuffle_each_iteration=True)
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=config.drop_remainder)
    augment_mode = (config.augment if config.training
                    and shard_format.format == records.WINDOW_FORMAT else augment.AUGMENT_NONE)
    parse = batch_parsing.batch_function(seq_len, image_dim, channels, num_classes,
                                         shard_format, augment_mode, seed,
                                         config.color_jitter if config.training else 0.0,
                                         config.zoom_jitter if config.training else 0.0,
                                         config.mixup if config.training else 0.0)
    dataset = dataset.enumerate().map(parse, num_parallel_calls=AUTOTUNE,
                                      deterministic=config.deterministic)
    return dataset.prefetch(AUTOTUNE)


def make_dataset(dataset_dir: str, split: str, manifest: Manifest,
                 config: PipelineConfig, input_context=None,
                 shard_uris: Optional[Sequence[str]] = None) -> "tf.data.Dataset":
    """The input pipeline over one split of a preprocessed ``DataSet`` folder.

    Checks the split's shards first (:func:`shards.check_shards`), unless given. Train records stored
    already augmented (``manifest.offline_augment``) are not augmented again.

    Args:
        dataset_dir: the ``DataSet`` folder or URI holding ``dataset.json``.
        split: ``Train`` or ``Eval``.
        manifest: the loaded manifest.
        config: batch size, shuffling, augmentation.
        input_context: see :func:`make_dataset_from_files`.
        shard_uris: the split's shards as :func:`shards.check_shards` returned them
            earlier in the run (a trainer checks once, not every epoch); None =
            check them now.

    Returns:
        ``tf.data.Dataset`` of ``(pixels, labels)``: ``(B, L, D, D, C)`` float32 in
        [0, 1] and ``(B, num_classes)`` float32 one-hot.

    Raises:
        ActrecogError: a shard missing, changed, or of another shape (naming it).
    """
    files = shard_uris or shards.check_shards(dataset_dir, manifest, split,
                                              config.verify_sha256)
    if manifest.offline_augment and config.augment != augment.AUGMENT_NONE:
        config = replace(config, augment=augment.AUGMENT_NONE)
    return make_dataset_from_files(
        files, manifest.seq_len, manifest.image_dim, manifest.channels,
        manifest.num_classes, config,
        shard_format=shards.stored_format(manifest.dtype),
        input_context=input_context)

