"""TFRecord shards of a DataSet folder: what a shard holds, and checks against the manifest.

One place for "is this shard the one the manifest lists": train.py checks a split's
shards once per run (first record's shape and dtype, sha256), debug.py CHECK reads
every record and uses the same existence and hash checks.
"""

import concurrent.futures
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from coreLib import storage
from coreLib.data.manifest import Manifest
from coreLib.errors import ActrecogError
from coreLib.preprocessing import legacy_records, records

tf = storage.tf

# Shards hashed (and their first record read) in parallel: gs:// latency.
HASH_THREADS = 4


def require_shard(uri: str) -> None:
    """ActrecogError naming a shard that the manifest lists but that is not there."""
    if not storage.exists(uri):
        raise ActrecogError(f"{uri}: shard listed in the manifest is missing")


def verify_shard_sha256(uri: str, expected_sha256: str) -> None:
    """ActrecogError when a shard's bytes do not hash to the manifest's sha256."""
    actual = storage.sha256_of(uri)
    if actual != expected_sha256:
        raise ActrecogError(f"{uri}: sha256 {actual} differs from the manifest's "
                            f"{expected_sha256} (shard changed or truncated)")


@dataclass(frozen=True)
class ShardFormat:
    """What the first record of a shard holds.

    Attributes:
        format: ``records.WINDOW_FORMAT`` or ``records.LEGACY_FORMAT``.
        dtype: stored pixel dtype: ``uint8``/``uint16`` (window records) or
            ``float32`` (2019 records, already in [0, 1]).
    """
    format: str
    dtype: str


def inspect_shard(path: str, window_shape: Sequence[int]) -> ShardFormat:
    """Reads the first record of a shard and checks it against the window shape.

    Args:
        path: shard path or URI.
        window_shape: expected ``(L, D, D, C)``.

    Returns:
        The shard's :class:`ShardFormat`.

    Raises:
        ActrecogError: naming the shard: unreadable, empty, neither format, or a
            window shape other than ``window_shape``.
    """
    window_shape = tuple(int(size) for size in window_shape)
    try:
        record = records.first_record(path)
    except StopIteration:
        raise ActrecogError(f"{path}: shard holds no records") from None
    except (tf.errors.OpError, OSError) as error:
        reason = (getattr(error, "message", None) or str(error)).splitlines()[0]
        raise ActrecogError(f"{path}: cannot read shard ({reason})") from None
    try:
        kind = records.detect_format(record)
    except ValueError as error:
        raise ActrecogError(f"{path}: not a window shard ({error})") from None
    example = tf.train.Example.FromString(record)
    feature = example.features.feature
    size = int(np.prod(window_shape))
    if kind == records.LEGACY_FORMAT:
        stored = len(feature[records.LEGACY_FEATS_KEY].float_list.value)
        if stored != size:
            raise ActrecogError(f"{path}: 2019 record holds {stored} values, expected "
                                f"{size} for windows of shape {window_shape}")
        return ShardFormat(records.LEGACY_FORMAT, "float32")
    stored_shape = tuple(feature[records.SHAPE_KEY].int64_list.value)
    if stored_shape != window_shape:
        raise ActrecogError(f"{path}: records hold windows of shape {stored_shape}, "
                            f"expected {window_shape}")
    num_bytes = len(feature[records.PIXELS_KEY].bytes_list.value[0])
    dtype = {size: "uint8", 2 * size: "uint16"}.get(num_bytes)
    if dtype is None:
        raise ActrecogError(f"{path}: record holds {num_bytes} pixel bytes, expected "
                            f"{size} (uint8) or {2 * size} (uint16) for shape "
                            f"{window_shape}")
    return ShardFormat(records.WINDOW_FORMAT, dtype)


def stored_format(dtype: str) -> ShardFormat:
    """The records a manifest's dtype stands for: ``float32`` is the 1.0.4 feats
    records (:mod:`coreLib.preprocessing.legacy_records`), the integer dtypes window
    records."""
    legacy = dtype == legacy_records.LEGACY_DTYPE
    return ShardFormat(records.LEGACY_FORMAT if legacy else records.WINDOW_FORMAT, dtype)


def _check_one_shard(uri: str, expected_sha256: str, verify_sha256: bool,
                     window_shape: Tuple[int, ...], dtype: str) -> None:
    require_shard(uri)
    shard_format = inspect_shard(uri, window_shape)
    expected = stored_format(dtype)
    if shard_format != expected:
        raise ActrecogError(f"{uri}: holds {shard_format.format} records of "
                            f"{shard_format.dtype}, the manifest says {expected.format} "
                            f"records of {dtype}")
    # 1.0.4 folders (no manifest) have no sha256 to compare with.
    if verify_sha256 and expected_sha256:
        verify_shard_sha256(uri, expected_sha256)


def check_shards(dataset_dir: str, manifest: Manifest, split: str,
                 verify_sha256: bool = True) -> List[str]:
    """Checks a split's shards against the manifest and returns their URIs.

    Every shard must exist, its first record must hold windows of the manifest's
    shape and dtype, and (``verify_sha256``) its bytes must hash to the manifest's
    sha256.

    Args:
        dataset_dir: the ``DataSet`` folder or URI holding ``dataset.json``.
        manifest: its loaded :class:`~coreLib.data.manifest.Manifest`.
        split: ``Train`` or ``Eval``.
        verify_sha256: hash every shard (reads the whole split once).

    Returns:
        Shard URIs in manifest order.

    Raises:
        ActrecogError: naming the split or the first bad shard.
    """
    info = manifest.splits.get(split)
    if info is None or not info.shards:
        raise ActrecogError(f"{dataset_dir}: the manifest lists no {split} shards")
    uris = [storage.join(dataset_dir, shard.path) for shard in info.shards]
    with concurrent.futures.ThreadPoolExecutor(HASH_THREADS) as pool:
        futures = [pool.submit(_check_one_shard, uri, shard.sha256, verify_sha256,
                               manifest.window_shape, manifest.dtype)
                   for uri, shard in zip(uris, info.shards)]
        # Results in manifest order, so the first bad shard is the one named.
        for future in futures:
            future.result()
    return uris
