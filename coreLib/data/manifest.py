"""``DataSet/dataset.json``: the one place that says what the records hold.

main.py writes it last (after every shard and JSON list is complete); every other
tool reads the class order, window shape and shard list from it, so the class list
can never disagree between training and scoring (the 2019 scorer hard-coded it).

Layout of ``DEST/DataSet/``::

    dataset.json
    mode:Train_numOfSeqences:<n>_minSeqLen:<L>.json     <n>: entries in the list
    mode:Eval_numOfSeqences:<n>_minSeqLen:<L>.json
    mode:Test_numOfSeqences:<n>_minSeqLen:<L>.json
    TFRECORD/Train/Train_<k>.tfrecord
    TFRECORD/Eval/Eval_<k>.tfrecord
"""

from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Tuple

from coreLib import storage
from coreLib.data import hand_crop as hand_crop_lib
from coreLib.errors import ActrecogError

MANIFEST_NAME = "dataset.json"
# Written by train.py beside the weights (model name, window shape, classes, ...);
# read by score.py, detect.py and export.py.
RUN_CONFIG_NAME = "run_config.json"
DATASET_FOLDER = "DataSet"
TFRECORD_FOLDER = "TFRECORD"
FORMAT_VERSION = 1
NO_ACTION = "no-action"
SPLITS = ("Train", "Eval", "Test")
# Splits stored as TFRecords; Test is scored from the frames (score.py).
RECORD_SPLITS = ("Train", "Eval")


def split_json_name(split: str, num_entries: int, seq_len: int) -> str:
    """The original tool's JSON list name (its spelling 'Seqences' kept).

    Despite the word, 1.0.4 put the number of *entries* of the list there (its
    ``mode:Test_numOfSeqences:21785_minSeqLen:6.json`` holds 21,785 windows of 48
    sequences; the Train name counts the 32 augmented copies): scripts written for
    it find the files by that number, so ``num_entries`` is the list's length.
    """
    return f"mode:{split}_numOfSeqences:{num_entries}_minSeqLen:{seq_len}.json"


def shard_name(split: str, index: int) -> str:
    """``TFRECORD/<split>/<split>_<k>.tfrecord``, relative to the DataSet folder."""
    return f"{TFRECORD_FOLDER}/{split}/{split}_{index}.tfrecord"


@dataclass(frozen=True)
class ShardInfo:
    """One TFRecord shard. ``path`` is relative to the DataSet folder."""
    path: str
    num_records: int
    sha256: str


@dataclass(frozen=True)
class SplitInfo:
    """One split: its JSON list, window count and shards (none for Test)."""
    name: str
    json_name: str
    num_sequences: int
    num_windows: int
    subjects: Tuple[str, ...]
    shards: Tuple[ShardInfo, ...] = ()
    class_counts: Dict[str, int] = field(default_factory=dict)

    @property
    def num_records(self) -> int:
        return sum(shard.num_records for shard in self.shards)


@dataclass(frozen=True)
class Manifest:
    """What main.py produced.

    Attributes:
        classes: class names in label-index order; ``no-action`` last.
        seq_len: frames per window L.
        image_dim: side D of the stored square frames.
        channels: C (3 for color, 1 for depth/confi; hand-centred frames with a
            path add its channels, :func:`hand_crop.frame_channels`).
        modality: ``color``, ``depth`` or ``confi``.
        dtype: pixel dtype of the records, ``uint8`` or ``uint16`` (``float32``:
            1.0.4 records, see :mod:`coreLib.preprocessing.legacy_records`).
        offline_augment: True when Train holds 32 stored copies per window.
        splits: ``Train``, ``Eval``, ``Test`` -> SplitInfo.
        source: the SRC folder the windows point at.
        frames: ``full`` (whole frames resized, 1.0.4's) or ``hand`` (squares
            around the hand, :mod:`coreLib.data.hand_crop`); every tool that
            reads frames applies the same transform.
        hand_crop: with ``hand``, the :class:`hand_crop.HandCropConfig` fields.
    """
    classes: Tuple[str, ...]
    seq_len: int
    image_dim: int
    channels: int
    modality: str
    dtype: str
    offline_augment: bool
    splits: Dict[str, SplitInfo]
    source: str
    format_version: int = FORMAT_VERSION
    frames: str = hand_crop_lib.FULL_FRAMES
    hand_crop: Optional[dict] = None

    def __post_init__(self):
        if self.frames not in hand_crop_lib.FRAME_MODES:
            raise ValueError(f"frames must be one of {', '.join(hand_crop_lib.FRAME_MODES)}, "
                             f"got {self.frames!r}")
        if self.frames == hand_crop_lib.HAND_FRAMES:
            if self.hand_crop is None:
                object.__setattr__(self, "hand_crop", asdict(hand_crop_lib.HandCropConfig()))
            self.hand_crop_config()  # checks the fields
        elif self.hand_crop is not None:
            raise ValueError("hand_crop settings given for full frames")
        if not self.classes or self.classes[-1] != NO_ACTION:
            raise ValueError(f"classes must end with {NO_ACTION!r}: {self.classes}")
        path_channels = hand_crop_lib.frame_channels(0, self.hand_crop_config())
        if (self.seq_len < 1 or self.image_dim < 1
                or self.channels - path_channels not in (1, 3)):
            raise ValueError(f"bad window shape {self.window_shape}")
        # float32: the 1.0.4 feats records, read without a manifest (legacy_records).
        if self.dtype not in ("uint8", "uint16", "float32"):
            raise ValueError(f"bad dtype {self.dtype!r}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def window_shape(self) -> Tuple[int, int, int, int]:
        """``(L, D, D, C)``."""
        return (self.seq_len, self.image_dim, self.image_dim, self.channels)

    def hand_crop_config(self) -> Optional[hand_crop_lib.HandCropConfig]:
        """The tracker's settings of hand-centred frames; None for full frames."""
        if self.frames != hand_crop_lib.HAND_FRAMES:
            return None
        return hand_crop_lib.HandCropConfig(**self.hand_crop)

    def class_index(self, name: str) -> int:
        """Label index of a class name; ActrecogError for an unknown name."""
        try:
            return self.classes.index(name)
        except ValueError:
            raise ActrecogError(f"class {name!r} is not in the manifest's classes") from None

    def to_json(self) -> dict:
        value = asdict(self)
        if self.frames == hand_crop_lib.FULL_FRAMES:
            # Full frames' manifests stay as 1.0.x wrote them (same bytes).
            del value["frames"], value["hand_crop"]
        return value

    @staticmethod
    def from_json(value: dict) -> "Manifest":
        splits = {}
        for name, split in value["splits"].items():
            shards = tuple(ShardInfo(**shard) for shard in split.get("shards", ()))
            splits[name] = SplitInfo(**{**split, "shards": shards,
                                        "subjects": tuple(split["subjects"])})
        return Manifest(**{**value, "classes": tuple(value["classes"]), "splits": splits})


def frame_json(manifest: Manifest) -> dict:
    """The ``frames`` and ``hand_crop`` keys a run_config.json or export.json
    records for a manifest (none for full frames: 1.0.x's files)."""
    if manifest.frames == hand_crop_lib.FULL_FRAMES:
        return {}
    return {"frames": manifest.frames, "hand_crop": dict(manifest.hand_crop)}


def frame_fields(value: dict) -> dict:
    """:class:`Manifest` keyword arguments ``frames`` and ``hand_crop`` from a
    run_config.json or export.json (absent: full frames)."""
    return {"frames": value.get("frames", hand_crop_lib.FULL_FRAMES),
            "hand_crop": value.get("hand_crop")}


def manifest_path(dataset_dir: str) -> str:
    """``<dataset_dir>/dataset.json``."""
    return storage.join(dataset_dir, MANIFEST_NAME)


def write_manifest(dataset_dir: str, manifest: Manifest) -> None:
    """Writes ``dataset.json`` atomically (sorted keys: same content, same bytes)."""
    storage.write_json_atomic(manifest_path(dataset_dir), manifest.to_json())


def load_manifest(dataset_dir: str) -> Manifest:
    """Reads ``<dataset_dir>/dataset.json``.

    Args:
        dataset_dir: the ``DataSet`` folder or URI.

    Raises:
        ActrecogError: missing, not JSON, or not a manifest (naming the file).
    """
    path = manifest_path(dataset_dir)
    if not storage.exists(path):
        raise ActrecogError(f"{dataset_dir}: no {MANIFEST_NAME} manifest (run main.py first)")
    value = storage.read_json(path, "manifest")
    try:
        return Manifest.from_json(value)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ActrecogError(f"{path}: not a pyACTRECOG manifest ({error})") from None
