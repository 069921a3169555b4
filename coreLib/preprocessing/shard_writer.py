"""The one TFRecord shard writer of main.py: windows cut from the cache files.

A :class:`ShardTask` names a shard's windows (which cache file, first frame,
label, and the rotation and flip of --offline-augment); :func:`write_shard`
writes them in order, records made without TensorFlow by
:mod:`coreLib.preprocessing.tfrecord_io` and hashed while written, or hashes
the shard when a killed run of the same arguments completed it. The decoding
workers run it for a local DEST; main.py's process runs it for a ``gs://`` DEST
and for augmented windows, passing the rotation itself (``transform``), so this
module stays TensorFlow-free.
"""

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import frames
from coreLib.preprocessing import tfrecord_io
from coreLib.preprocessing.sequence_cache import CacheReader, DecodeTask

# Windows transformed per call with --offline-augment (bounds the float32 copy).
TRANSFORM_CHUNK = 64
# ``transform(pixels (B, L, D, D, C), rotations (B,) int32, flips (B,) int32)``:
# the windows rotated and flipped, same shape and dtype.
Transform = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ShardTask:
    """One TFRecord shard, to write from cache files.

    Attributes:
        path: the shard's final path (local, or a URI when main.py's process
            writes it).
        caches: the cache files (stored :class:`DecodeTask`) of the sequences
            the windows come from.
        subjects, actions: per entry of ``caches``, its subject and action.
        seq_len: L.
        source: ``(W,)`` int32 index into ``caches`` per window, in shard order.
        start: ``(W,)`` int32 first frame per window.
        label: ``(W,)`` int32 class index per window.
        rotation: ``(W,)`` int32 degrees per window (--offline-augment), or None
            for none.
        flip: ``(W,)`` int32 flip code per window, or None for none.
    """
    path: str
    caches: Tuple[DecodeTask, ...]
    subjects: Tuple[str, ...]
    actions: Tuple[str, ...]
    seq_len: int
    source: np.ndarray
    start: np.ndarray
    label: np.ndarray
    rotation: Optional[np.ndarray] = None
    flip: Optional[np.ndarray] = None

    def augmentation(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(rotation, flip)`` per window, zeros when not augmented."""
        zeros = np.zeros(len(self.start), np.int32)
        return (zeros if self.rotation is None else self.rotation,
                zeros if self.flip is None else self.flip)


@dataclass(frozen=True)
class ShardResult:
    """A finished shard: its size in bytes, hex sha256, and whether it was
    already there (complete, from a killed run) and only hashed."""
    num_bytes: int
    sha256: str
    reused: bool


def _transformed(reader: CacheReader, task: ShardTask, begin: int, end: int,
                 transform: Optional[Transform]) -> Optional[np.ndarray]:
    """``(B, L, D, D, C)`` pixels of windows ``begin:end`` rotated and flipped, or
    None when none of them is (their cached bytes are written as they are)."""
    rotation, flip = task.augmentation()
    if transform is None or not (rotation[begin:end].any() or flip[begin:end].any()):
        return None
    batch = np.stack([reader.window(source, start, task.seq_len)
                      for source, start in zip(task.source[begin:end].tolist(),
                                               task.start[begin:end].tolist())])
    return transform(batch, rotation[begin:end], flip[begin:end])


def write_records(writer: tfrecord_io.RecordWriter, task: ShardTask,
                  transform: Optional[Transform] = None) -> None:
    """Appends the task's window records, in order, to ``writer`` (``transform``:
    see :data:`Transform`; needed when the task has rotations or flips)."""
    shapes = [(task.seq_len,) + cache.shape[1:] for cache in task.caches]
    dtypes = [np.dtype(frames.modality_spec(cache.modality).dtype) for cache in task.caches]
    swap = not tfrecord_io.native_is_little_endian()
    rotations, flips = (values.tolist() for values in task.augmentation())
    with CacheReader(task.caches) as reader:
        for begin in range(0, len(task.start), TRANSFORM_CHUNK):
            end = min(begin + TRANSFORM_CHUNK, len(task.start))
            pixels = _transformed(reader, task, begin, end, transform)
            for index in range(begin, end):
                source, start = int(task.source[index]), int(task.start[index])
                if pixels is not None:
                    data = tfrecord_io.little_endian_bytes(pixels[index - begin])
                else:
                    data = reader.window_bytes(source, start, task.seq_len)
                    if swap and dtypes[source].itemsize > 1:
                        data = tfrecord_io.little_endian_bytes(
                            np.frombuffer(data, dtypes[source]))
                boxes = reader.window_boxes(source, start, task.seq_len)
                if swap and boxes is not None:
                    boxes = tfrecord_io.little_endian_bytes(np.frombuffer(boxes, np.float32))
                writer.write(tfrecord_io.window_record_parts(
                    data, shapes[source], int(task.label[index]), task.subjects[source],
                    task.actions[source], start, rotations[index], flips[index], boxes))


def write_shard(task: ShardTask, transform: Optional[Transform] = None) -> ShardResult:
    """Writes one shard, or hashes it if a killed run of the same arguments
    completed it already.

    The shard appears under its final name only when complete (written under a
    ``*.tmp-*`` name and renamed); its sha256 is computed while writing.

    Returns:
        The shard's size, sha256 and whether it was reused.
    """
    if storage.exists(task.path):
        return ShardResult(storage.file_size(task.path), storage.sha256_of(task.path), True)
    num_bytes, sha256 = tfrecord_io.write_record_file(
        task.path, lambda writer: write_records(writer, task, transform))
    return ShardResult(num_bytes, sha256, False)
