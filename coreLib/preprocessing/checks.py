"""debug.py CHECK: every record of a DataSet folder against its manifest.

Reads every record of every split that has shards and checks, in this order, each
shard's existence, every record (keys, window shape, pixel dtype by byte count,
label range), the record count and the sha256, so a damaged record is named by its
shard and index rather than only by a shard hash. Counts windows per split and per
class, and draws a montage of a few windows per split (headless).
"""

import io
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from coreLib.data import hand_crop, manifest as manifest_lib
from coreLib import storage
from coreLib.preprocessing import legacy_records, records, shards
from coreLib.errors import ActrecogError

tf = storage.tf

READ_BATCH = 256
MONTAGE_WINDOWS = 6
MONTAGE_MAX_FRAMES = 8


@dataclass(frozen=True)
class SplitReport:
    """What CHECK found in one split.

    Attributes:
        split: ``Train`` or ``Eval``.
        num_records: records read.
        num_shards: shards read.
        class_counts: class name -> records, in manifest class order.
        samples: up to ``MONTAGE_WINDOWS`` ``(pixels (L, D, D, C), label)`` pairs.
    """
    split: str
    num_records: int
    num_shards: int
    class_counts: Dict[str, int]
    samples: List[Tuple[np.ndarray, int]] = field(default_factory=list, repr=False)


def _record_problem(record: bytes, window_shape, dtype: str, num_classes: int) -> Optional[str]:
    """What is wrong with one serialised window record, or None."""
    try:
        example = tf.train.Example.FromString(record)
    except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError
        return "not a tf.train.Example"
    feature = example.features.feature
    for key, kind in ((records.PIXELS_KEY, "bytes_list"), (records.SHAPE_KEY, "int64_list"),
                      (records.LABEL_KEY, "int64_list")):
        if key not in feature or feature[key].WhichOneof("kind") != kind:
            return f"no {key!r} {kind.split('_')[0]} feature"
    shape = tuple(feature[records.SHAPE_KEY].int64_list.value)
    if shape != tuple(window_shape):
        return f"window shape {shape}, the manifest says {tuple(window_shape)}"
    pixel_values = feature[records.PIXELS_KEY].bytes_list.value
    expected_bytes = int(np.prod(window_shape)) * np.dtype(dtype).itemsize
    if len(pixel_values) != 1 or len(pixel_values[0]) != expected_bytes:
        found = sum(len(value) for value in pixel_values)
        return (f"{found} pixel bytes, {dtype} windows of shape {tuple(window_shape)} "
                f"need {expected_bytes}")
    labels = feature[records.LABEL_KEY].int64_list.value
    if len(labels) != 1 or not 0 <= labels[0] < num_classes:
        return f"label {list(labels)} outside 0..{num_classes - 1}"
    return None


def _check_batch(serialized: List[bytes], window_shape, dtype: str, num_classes: int):
    """Checks a batch in one parse; returns ``(labels (B,) int64, pixels)`` or the
    index and problem of the first bad record."""
    if dtype == legacy_records.LEGACY_DTYPE:   # 1.0.4 feats records
        return legacy_records.check_batch(serialized, window_shape, num_classes)
    try:
        parsed = records.parse_window_batch(np.array(serialized, dtype=object),
                                            *window_shape[:2], window_shape[3], dtype)
        shapes = parsed[records.SHAPE_KEY].numpy()
        labels = parsed[records.LABEL_KEY].numpy()
        if (shapes == np.array(window_shape)).all() and \
                ((labels >= 0) & (labels < num_classes)).all():
            return labels, parsed[records.PIXELS_KEY].numpy(), None
    except tf.errors.InvalidArgumentError:
        pass
    # Something is off: find the first bad record one by one (rare, so slow is fine).
    for index, record in enumerate(serialized):
        problem = _record_problem(record, window_shape, dtype, num_classes)
        if problem:
            return None, None, (index, problem)
    raise AssertionError("batch failed to parse but every record checks out")


def _first_unreadable(path: str, start: int) -> int:
    """Index of the first record at or after ``start`` that cannot be read."""
    index = start
    try:
        for _ in tf.data.TFRecordDataset(path).skip(start):
            index += 1
    except tf.errors.DataLossError:
        pass
    return index


def check_split(dataset_dir: str, manifest: manifest_lib.Manifest, split: str,
                verify_sha256: bool = True) -> SplitReport:
    """Reads and checks every record of one split.

    Args:
        dataset_dir: the ``DataSet`` folder or URI.
        manifest: its manifest.
        split: a split with shards (``Train`` or ``Eval``).
        verify_sha256: also hash every shard against the manifest.

    Returns:
        The split's :class:`SplitReport`.

    Raises:
        ActrecogError: naming the shard (and the record index for a bad record).
    """
    info = manifest.splits[split]
    counts = np.zeros(manifest.num_classes, np.int64)
    samples: List[Tuple[np.ndarray, int]] = []
    for shard in info.shards:
        path = storage.join(dataset_dir, shard.path)
        shards.require_shard(path)
        index = 0
        batches = iter(tf.data.TFRecordDataset(path).batch(READ_BATCH))
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except tf.errors.DataLossError:
                bad_index = _first_unreadable(path, index)
                raise ActrecogError(f"{path}: record {bad_index}: corrupt or truncated "
                                    f"TFRecord data") from None
            serialized = list(batch.numpy())
            labels, pixels, problem = _check_batch(serialized, manifest.window_shape,
                                                   manifest.dtype, manifest.num_classes)
            if problem:
                raise ActrecogError(f"{path}: record {index + problem[0]}: {problem[1]}")
            counts += np.bincount(labels, minlength=manifest.num_classes)
            for window, label in zip(pixels, labels):
                if len(samples) >= MONTAGE_WINDOWS:
                    break
                samples.append((window, int(label)))
            index += len(serialized)
        if index != shard.num_records:
            raise ActrecogError(f"{path}: holds {index} records, the manifest says "
                                f"{shard.num_records}")
        if verify_sha256 and shard.sha256:   # 1.0.4 folders have none
            shards.verify_shard_sha256(path, shard.sha256)
    return SplitReport(split, int(counts.sum()), len(info.shards),
                       {name: int(count) for name, count in zip(manifest.classes, counts)},
                       samples)


def check_dataset(dataset_dir: str, verify_sha256: bool = True,
                  manifest: Optional[manifest_lib.Manifest] = None
                  ) -> Dict[str, SplitReport]:
    """Checks every split with shards of a DataSet folder.

    Args:
        manifest: the folder's manifest when already loaded (None: load it, or
            read the folder as 1.0.4 records).

    Returns:
        split name -> :class:`SplitReport`, in ``Train``, ``Eval`` order.

    Raises:
        ActrecogError: no manifest, no shards at all, or a bad shard or record.
    """
    manifest = manifest or legacy_records.load_manifest_or_legacy(dataset_dir)
    splits = [split for split in manifest_lib.RECORD_SPLITS
              if split in manifest.splits and manifest.splits[split].shards]
    if not splits:
        raise ActrecogError(f"{dataset_dir}: the manifest lists no record shards")
    return {split: check_split(dataset_dir, manifest, split, verify_sha256)
            for split in splits}


def montage_png(report: SplitReport, manifest: manifest_lib.Manifest) -> bytes:
    """A grid of the report's sample windows (one row each, frames left to right)
    with their class names, as PNG bytes. Drawn with the Agg backend: no window."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = max(1, len(report.samples))
    columns = min(manifest.seq_len, MONTAGE_MAX_FRAMES)
    # The frame's own channels (hand-centred frames' motion channels are not pictures).
    shown = manifest.channels - hand_crop.frame_channels(0, manifest.hand_crop_config())
    figure, axes = pyplot.subplots(rows, columns, figsize=(1.6 * columns, 1.7 * rows),
                                   squeeze=False)
    for row in range(rows):
        for column in range(columns):
            plot = axes[row][column]
            plot.axis("off")
            if row >= len(report.samples):
                continue
            window, label = report.samples[row]
            # What the model sees: the pipeline's own scaling.
            frame = records.scale_pixels(window[column], manifest.dtype).numpy()[..., :shown]
            if frame.shape[-1] == 1:
                plot.imshow(frame[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                plot.imshow(np.clip(frame, 0.0, 1.0))
            if column == 0:
                plot.set_title(f"{manifest.classes[label]} ({label})", fontsize=8,
                               loc="left")
    figure.suptitle(f"{report.split}: first {len(report.samples)} windows", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72)
    pyplot.close(figure)
    return buffer.getvalue()


def montage_name(split: str) -> str:
    """``check_<split>.png``, debug.py CHECK's montage of a split."""
    return f"check_{split}.png"
