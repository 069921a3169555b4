"""DataSet folders written by pyACTRECOG 1.0.4 (2019): records without a manifest.

A user with the 2019 bucket has::

    DataSet/TFRECORD/Train/Train_<k>.tfrecord    512 windows per file
    DataSet/TFRECORD/Eval/Train_<k>.tfrecord     files moved there by hand (optional)

and no ``dataset.json``. Each record holds ``feats`` (float32 list of L*64*64*3
colour pixels in [0, 1], stored already rotated/flipped) and ``label`` (int64).
This module turns such a folder into the in-memory :class:`~coreLib.data.manifest.Manifest`
that training and ``debug.py CHECK`` read, so the rest of the tools need no second
code path. The manifest of a 1.0.4 folder is told apart by its pixel dtype
``float32`` (main.py's records are never float), its shards carry no sha256
(nothing recorded one), and its record counts come from the file sizes.

The class order is not stored in the records: 1.0.4's main.py took it from
``os.listdir`` of the first subject's folder, and its scorer hard-coded the order
the published records were written with (:data:`LEGACY_CLASSES`). A user whose
records were written in another order names it (``--legacy-classes``).
"""

import re
import struct
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from coreLib.data import manifest as manifest_lib
from coreLib import storage
from coreLib.preprocessing import records
from coreLib.errors import ActrecogError

tf = storage.tf

LEGACY_VERSION = "1.0.4"
# The order 1.0.4's scorer hard-coded: the label indices of the published records.
LEGACY_CLASSES = (
    "ui-screenTap", "asl-you", "asl-blue", "ui-doubleclick", "asl-j", "asl-green",
    "asl-z", "ui-keyTap", "asl-scissors", "asl-bathroom", "ui-swipe", "asl-where",
    "asl-yellow", "ui-click", "asl-milk", "ui-circle", manifest_lib.NO_ACTION)
# 1.0.4 resized every colour frame to 64x64 and stored it as float32 in [0, 1].
LEGACY_IMAGE_DIM = 64
LEGACY_CHANNELS = 3
LEGACY_DTYPE = "float32"
LEGACY_MODALITY = "color"
FRAME_VALUES = LEGACY_IMAGE_DIM * LEGACY_IMAGE_DIM * LEGACY_CHANNELS
SHARD_SUFFIX = ".tfrecord"
# TFRecord framing around each record: uint64 length, its crc32, the data's crc32.
_LENGTH_BYTES = 8
_HEADER_BYTES = _LENGTH_BYTES + 4
_FRAMING_BYTES = _HEADER_BYTES + 4
CLASSES_OPTION = "--legacy-classes"


def is_legacy_manifest(manifest: manifest_lib.Manifest) -> bool:
    """True for the manifest :func:`load_legacy_manifest` built (float32 records)."""
    return manifest.dtype == LEGACY_DTYPE


def check_classes(classes: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """The class order of 1.0.4 records: :data:`LEGACY_CLASSES` or the user's list.

    Args:
        classes: names in label-index order, or None for the 1.0.4 default.

    Returns:
        The class names as a tuple.

    Raises:
        ActrecogError: naming ``--legacy-classes``: not 17 names, an empty or
            repeated name, or ``no-action`` not last.
    """
    if classes is None:
        return LEGACY_CLASSES
    classes = tuple(classes)
    if len(classes) != len(LEGACY_CLASSES):
        raise ActrecogError(f"{CLASSES_OPTION}: {len(classes)} names given; 1.0.4 records "
                            f"index {len(LEGACY_CLASSES)} classes (16 actions, then "
                            f"{manifest_lib.NO_ACTION})")
    for name in classes:
        if not isinstance(name, str) or not name.strip():
            raise ActrecogError(f"{CLASSES_OPTION}: empty class name in {list(classes)}")
        if classes.count(name) > 1:
            raise ActrecogError(f"{CLASSES_OPTION}: class {name!r} given twice")
    if classes[-1] != manifest_lib.NO_ACTION:
        raise ActrecogError(f"{CLASSES_OPTION}: the last class must be "
                            f"{manifest_lib.NO_ACTION!r}, got {classes[-1]!r}")
    return classes


def records_folder(dataset_dir: str) -> Optional[str]:
    """Where the split folders of a 1.0.4 folder are, relative to ``dataset_dir``.

    Returns:
        ``"TFRECORD"`` for the DataSet folder (``TFRECORD/Train/*.tfrecord``), ``""``
        for the TFRECORD folder itself (``Train/*.tfrecord``, what 1.0.4's debug.py
        was given), None when neither holds Train shards.
    """
    for folder in (manifest_lib.TFRECORD_FOLDER, ""):
        train = storage.join(dataset_dir, folder, "Train")
        if storage.isdir(train) and _shard_names(train):
            return folder
    return None


def _shard_names(folder: str) -> List[str]:
    """``*.tfrecord`` names of a folder, by the number in the name (Train_10 after
    Train_9), then by name."""
    def key(name):
        numbers = re.findall(r"\d+", name)
        return (int(numbers[-1]) if numbers else -1, name)
    return sorted((name for name in storage.listdir(folder) if name.endswith(SHARD_SUFFIX)
                   and storage.TEMP_MARKER not in name), key=key)


def _read_first_record(path: str) -> bytes:
    """The first record's bytes, read through the TFRecord framing by hand: a
    ``tf.data`` reader costs ~0.1 s to set up per shard, a folder has hundreds.
    (The CRCs are checked by the input pipeline when it reads the records.)"""
    try:
        size = tf.io.gfile.stat(path).length
        if size == 0:
            raise ActrecogError(f"{path}: shard holds no records")
        with tf.io.gfile.GFile(path, "rb") as handle:
            header = handle.read(_HEADER_BYTES)
            length = (struct.unpack("<Q", header[:_LENGTH_BYTES])[0]
                      if len(header) == _HEADER_BYTES else size)
            # A length past the end (a cut or foreign file) is never read.
            if length + _FRAMING_BYTES > size:
                raise ActrecogError(f"{path}: record 0: truncated TFRecord data")
            return handle.read(length)
    except (tf.errors.OpError, OSError) as error:
        reason = (getattr(error, "message", None) or str(error)).splitlines()[0]
        raise ActrecogError(f"{path}: cannot read shard ({reason})") from None


def _first_example(path: str) -> Tuple[int, "tf.train.Example"]:
    """Serialised size and parsed first record of a shard."""
    record = _read_first_record(path)
    try:
        kind = records.detect_format(record)
    except Exception as error:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise ActrecogError(f"{path}: record 0: not a {LEGACY_VERSION} record "
                            f"({str(error).splitlines()[0] if str(error) else 'unparsable'})"
                            ) from None
    if kind != records.LEGACY_FORMAT:
        raise ActrecogError(f"{path}: holds pyACTRECOG window records, but its folder has "
                            f"no {manifest_lib.MANIFEST_NAME} manifest (restore it, or run "
                            f"main.py again)")
    return len(record), tf.train.Example.FromString(record)


def seq_len_of_values(path: str, num_values: int) -> int:
    """L of a 1.0.4 record holding ``num_values`` feats values (L x 64 x 64 x 3).

    Raises:
        ActrecogError: naming the shard when the count is not a positive multiple
            of 64*64*3.
    """
    if num_values <= 0 or num_values % FRAME_VALUES:
        raise ActrecogError(f"{path}: record 0 holds {num_values} feats values, not a "
                            f"multiple of 64*64*3 = {FRAME_VALUES} ({LEGACY_VERSION} "
                            f"stored 64x64x3 frames)")
    return num_values // FRAME_VALUES


def count_records(path: str, record_bytes: int) -> int:
    """Records in a TFRecord file whose first record is ``record_bytes`` long.

    1.0.4 records of one folder all have the same size (same feats length, a
    one-byte label), so the file size gives the count without reading the file
    (which matters for 150 MB shards in a bucket). A file whose size does not
    fit is walked record header by record header (seeking over the data).

    Raises:
        ActrecogError: naming the file when it ends inside a record.
    """
    size = tf.io.gfile.stat(path).length
    framed = record_bytes + _FRAMING_BYTES
    if size % framed == 0:
        return size // framed
    count, position = 0, 0
    with tf.io.gfile.GFile(path, "rb") as handle:
        while position < size:
            header = handle.read(_HEADER_BYTES)
            if len(header) < _HEADER_BYTES:
                break
            (length,) = struct.unpack("<Q", header[:_LENGTH_BYTES])
            position += _FRAMING_BYTES + length
            if position > size:
                break
            handle.seek(position)
            count += 1
    if position != size:
        raise ActrecogError(f"{path}: record {count}: truncated TFRecord data")
    return count


def _read_split(dataset_dir: str, folder: str, split: str, seq_len: Optional[int],
                classes: Tuple[str, ...]) -> Tuple[int, manifest_lib.SplitInfo]:
    """Inspects the first record of every shard of one split and counts its records.

    Returns:
        ``(seq_len, SplitInfo)``; ``seq_len`` from the first shard when None.
    """
    relative_folder = f"{folder}/{split}" if folder else split
    names = _shard_names(storage.join(dataset_dir, relative_folder))
    if not names:
        raise ActrecogError(f"{storage.join(dataset_dir, relative_folder)}: no "
                            f"*{SHARD_SUFFIX} shards")
    shards = []
    for name in names:
        relative = f"{relative_folder}/{name}"
        path = storage.join(dataset_dir, relative)
        record_bytes, example = _first_example(path)
        feature = example.features.feature
        num_values = len(feature[records.LEGACY_FEATS_KEY].float_list.value)
        if seq_len is None:
            seq_len = seq_len_of_values(path, num_values)
        elif num_values != seq_len * FRAME_VALUES:
            raise ActrecogError(f"{path}: record 0 holds {num_values} feats values, the "
                                f"first shard's records hold {seq_len * FRAME_VALUES} "
                                f"(L = {seq_len})")
        labels = list(feature[records.LABEL_KEY].int64_list.value)
        if len(labels) != 1 or not 0 <= labels[0] < len(classes):
            raise ActrecogError(f"{path}: record 0: label {labels} outside the "
                                f"{len(classes)} classes 0..{len(classes) - 1} "
                                f"({CLASSES_OPTION})")
        # No sha256: nothing recorded one in 2019, and hashing now proves nothing.
        shards.append(manifest_lib.ShardInfo(relative, count_records(path, record_bytes),
                                             sha256=""))
    num_records = sum(shard.num_records for shard in shards)
    return seq_len, manifest_lib.SplitInfo(split, json_name="", num_sequences=0,
                                           num_windows=num_records, subjects=(),
                                           shards=tuple(shards))


def load_legacy_manifest(dataset_dir: str,
                         classes: Optional[Sequence[str]] = None) -> manifest_lib.Manifest:
    """The manifest equivalent of a 1.0.4 folder.

    Args:
        dataset_dir: the DataSet folder (``TFRECORD/Train``) or the TFRECORD folder
            (``Train``), local or URI.
        classes: class names in label order; None = :data:`LEGACY_CLASSES`.

    Returns:
        A :class:`~coreLib.data.manifest.Manifest` with window ``(L, 64, 64, 3)`` float32
        (L from the first Train record), ``offline_augment`` True (the records
        were stored augmented), ``Train`` and, when its folder exists, ``Eval``.

    Raises:
        ActrecogError: no Train shards, a shard unreadable, empty or truncated, a
            feats length not a multiple of 64*64*3 or differing between shards, a
            first record's label outside the classes, or a bad class list.
    """
    classes = check_classes(classes)
    folder = records_folder(dataset_dir)
    if folder is None:
        raise ActrecogError(f"{dataset_dir}: no {manifest_lib.MANIFEST_NAME} manifest (run "
                            f"main.py first) and no {LEGACY_VERSION} shards in "
                            f"{manifest_lib.TFRECORD_FOLDER}/Train/")
    seq_len, train = _read_split(dataset_dir, folder, "Train", None, classes)
    splits: Dict[str, manifest_lib.SplitInfo] = {"Train": train}
    if storage.isdir(storage.join(dataset_dir, folder, "Eval")):
        _, splits["Eval"] = _read_split(dataset_dir, folder, "Eval", seq_len, classes)
    return manifest_lib.Manifest(classes=classes, seq_len=seq_len,
                                 image_dim=LEGACY_IMAGE_DIM, channels=LEGACY_CHANNELS,
                                 modality=LEGACY_MODALITY, dtype=LEGACY_DTYPE,
                                 offline_augment=True, splits=splits,
                                 source=f"pyACTRECOG {LEGACY_VERSION} records")


def describe(dataset_dir: str, manifest: manifest_lib.Manifest, custom_classes: bool) -> str:
    """The one-line note that a folder was read as 1.0.4 records."""
    parts = [f"{split} {info.num_records} records in {len(info.shards)} shards"
             for split, info in manifest.splits.items()]
    if "Eval" not in manifest.splits:
        parts.append("no Eval folder")
    order = f"{CLASSES_OPTION} order" if custom_classes else f"the {LEGACY_VERSION} order"
    return (f"{dataset_dir}: no {manifest_lib.MANIFEST_NAME}, read as {LEGACY_VERSION} "
            f"records: window {manifest.window_shape} {manifest.dtype}, "
            f"{', '.join(parts)}; {manifest.num_classes} classes in {order}")


def load_manifest_or_legacy(dataset_dir: str, classes: Optional[Sequence[str]] = None,
                            note: Optional[Callable[[str], None]] = None
                            ) -> manifest_lib.Manifest:
    """``dataset.json`` when the folder has one, else the folder's 1.0.4 records.

    Args:
        dataset_dir: the DataSet folder or URI.
        classes: ``--legacy-classes`` (1.0.4 records only; None = the default order).
        note: called with the one-line :func:`describe` note for a 1.0.4 folder.

    Raises:
        ActrecogError: see :func:`~coreLib.data.manifest.load_manifest` and
            :func:`load_legacy_manifest`; ``--legacy-classes`` given for a folder
            with a manifest (its own classes count).
    """
    if storage.exists(manifest_lib.manifest_path(dataset_dir)):
        if classes is not None:
            raise ActrecogError(f"{CLASSES_OPTION}: {dataset_dir} holds a "
                                f"{manifest_lib.MANIFEST_NAME} manifest, whose classes "
                                f"are used; the option is for {LEGACY_VERSION} records")
        return manifest_lib.load_manifest(dataset_dir)
    manifest = load_legacy_manifest(dataset_dir, classes)
    if note:
        note(describe(dataset_dir, manifest, classes is not None))
    return manifest


# ----------------------------------------------------------------------------- CHECK

def record_problem(record: bytes, window_shape: Sequence[int], num_classes: int
                   ) -> Optional[str]:
    """What is wrong with one serialised 1.0.4 record, or None."""
    try:
        example = tf.train.Example.FromString(record)
    except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError
        return "not a tf.train.Example"
    feature = example.features.feature
    for key, kind in ((records.LEGACY_FEATS_KEY, "float_list"),
                      (records.LABEL_KEY, "int64_list")):
        if key not in feature or feature[key].WhichOneof("kind") != kind:
            return f"no {key!r} {kind.split('_')[0]} feature"
    expected = int(np.prod(window_shape))
    found = len(feature[records.LEGACY_FEATS_KEY].float_list.value)
    if found != expected:
        return f"{found} feats values, windows of shape {tuple(window_shape)} need {expected}"
    labels = list(feature[records.LABEL_KEY].int64_list.value)
    if len(labels) != 1 or not 0 <= labels[0] < num_classes:
        return f"label {labels} outside 0..{num_classes - 1} ({CLASSES_OPTION})"
    return None


def check_batch(serialized: List[bytes], window_shape: Sequence[int], num_classes: int):
    """Checks a batch of 1.0.4 records in one parse, as ``checks`` does for window
    records.

    Returns:
        ``(labels (B,) int64, pixels (B, L, 64, 64, 3) float32, None)``, or
        ``(None, None, (index, problem))`` for the first bad record.
    """
    try:
        parsed = records.parse_legacy_batch(np.array(serialized, dtype=object),
                                            *window_shape[:2], window_shape[3])
        labels = parsed[records.LABEL_KEY].numpy()
        if ((labels >= 0) & (labels < num_classes)).all():
            return labels, parsed[records.PIXELS_KEY].numpy(), None
    except tf.errors.InvalidArgumentError:
        pass
    for index, record in enumerate(serialized):
        problem = record_problem(record, window_shape, num_classes)
        if problem:
            return None, None, (index, problem)
    raise AssertionError("batch failed to parse but every record checks out")
