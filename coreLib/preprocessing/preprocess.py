"""main.py's pipeline: a BII-layout SRC turned into windows, JSON lists and shards.

Phases, in this order:

1. Discovery and labels (cheap, no pixels): find every sequence under
   ``SRC/Train`` and ``SRC/Test``, count its frames, read and check its label file,
   choose L, build every split's window list (arrays of sequence, start, label,
   augmentation variant) and the shuffled Train order. Every check that needs no
   pixels fails here, before anything is written.
2. Decoding: worker processes read, check, decode and resize every frame of the
   chosen modality exactly once, into one small cache file per sequence
   (coreLib.preprocessing.sequence_cache). Test frames are only checked: score.py reads them.
   A bad frame stops the run and removes what it created.
3. Writing: the shards, windows cut from the cache files, and the JSON lists;
   then ``dataset.json``, last. For a local DEST the same worker processes write
   the shards, one per task (records made without TensorFlow by
   coreLib.preprocessing.tfrecord_io, hashed while written), while this process writes the
   JSON lists; for a ``gs://`` DEST or with --offline-augment (which rotates
   with TensorFlow) this process writes them in turn. Every file appears under
   its final name in one step (coreLib.storage), so a killed run can be started
   again with the same arguments: it reuses complete cache files and shards and
   ends with the same bytes as an uninterrupted run.

Memory does not grow with the dataset: each process holds the window index
arrays (a few bytes per window) and at most one shard's worth of pixels.
"""

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import action_sets, frames, labels, manifest, window_lists, windows
from coreLib.data import hand_crop as hand_crop_lib
from coreLib.preprocessing import augment, records, sequence_cache, tfrecord_io
from coreLib.errors import ActrecogError
from coreLib.progress import progress_bar


SOURCE_SPLITS = ("Train", "Test")
LABEL_SUFFIX = ".xml"
STATE_NAME = ".preprocess-state.json"
CACHE_PREFIX = ".preprocess-cache-"
# Windows transformed per call in --offline-augment (bounds the float32 copy).
_AUGMENT_CHUNK = 64
_STATE_VERSION = 1


@dataclass(frozen=True)
class PreprocessConfig:
    """Arguments of main.py.

    Attributes:
        src: dataset folder with ``Train/`` and ``Test/`` (local path or URI).
        dest: output folder (local path or URI); results go to ``DEST/DataSet``.
        seq_len: window length L; None = smallest ``len`` over all label files.
        image_dim: side D of the stored square frames.
        modality: ``color``, ``depth`` or ``confi``.
        eval_subjects: Train subjects whose windows form the Eval split.
        batch_size: the Train list is cut to a multiple of it.
        shard_size: windows per TFRecord shard.
        seed: seed for choosing kept no-action windows and the Train order.
        offline_augment: store 32 rotated/flipped copies per Train window.
        clip_intervals: clip label intervals past the last frame (with a warning)
            instead of failing.
        workers: decoding processes.
        frames: ``full`` (whole frames resized) or ``hand`` (hand-centred
            squares, :mod:`coreLib.data.hand_crop`; not with offline_augment,
            whose 32 copies are 1.0.4's full frames).
        hand_crop: the hand tracker's settings (with ``hand``).
        actions: ``--actions``: the only action names allowed (None: any, with a
            warning for names outside BII's 16 or only some subjects have).
    """
    src: str
    dest: str
    seq_len: Optional[int] = None
    image_dim: int = 64
    modality: str = "color"
    eval_subjects: Tuple[str, ...] = ("LN",)
    batch_size: int = 128
    shard_size: int = 512
    seed: int = 0
    offline_augment: bool = False
    clip_intervals: bool = False
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    frames: str = hand_crop_lib.FULL_FRAMES
    hand_crop: hand_crop_lib.HandCropConfig = hand_crop_lib.HandCropConfig()
    actions: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        object.__setattr__(self, "eval_subjects", tuple(self.eval_subjects))
        if self.actions is not None:
            object.__setattr__(self, "actions", tuple(self.actions))
        if not self.src or not self.dest:
            raise ValueError(f"src and dest must be set, got {self.src!r}, {self.dest!r}")
        if self.seq_len is not None and self.seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {self.seq_len}")
        for name in ("image_dim", "batch_size", "shard_size", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.modality not in frames.MODALITIES:
            raise ValueError(f"modality must be one of {sorted(frames.MODALITIES)}, "
                             f"got {self.modality!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.frames not in hand_crop_lib.FRAME_MODES:
            raise ValueError(f"frames must be one of {', '.join(hand_crop_lib.FRAME_MODES)}, "
                             f"got {self.frames!r}")
        if self.frames == hand_crop_lib.HAND_FRAMES and self.offline_augment:
            raise ValueError("--frames hand and --offline-augment: the stored copies "
                             "are 1.0.4's full frames (use --frames full)")

    @property
    def tracks_hand(self) -> bool:
        return self.frames == hand_crop_lib.HAND_FRAMES


@dataclass(frozen=True)
class Sequence:
    """One recorded sequence (one label file and its frame folder).

    Attributes:
        source_split: ``Train`` or ``Test`` (the SRC folder it sits in).
        subject, action: its subject and action names.
        path: the sequence folder, absolute (what the JSON lists point at).
        label_path: its ``<action>.xml``.
        num_frames: N.
        intervals: labelled intervals inside ``[0, N)`` (clipped if asked).
        shortest_len: the smallest ``len`` written in the label file.
    """
    source_split: str
    subject: str
    action: str
    path: str
    label_path: str
    num_frames: int
    intervals: Tuple[labels.Interval, ...]
    shortest_len: int


@dataclass(frozen=True)
class WindowList:
    """The windows of one split, as parallel arrays (no pixels).

    Attributes:
        sequence: ``(W,)`` int32 index into the plan's sequences.
        start: ``(W,)`` int32 first frame.
        label: ``(W,)`` int32 class index.
        variant: ``(W,)`` int32 index into ``augment.variants()`` (0 = none).
    """
    sequence: np.ndarray
    start: np.ndarray
    label: np.ndarray
    variant: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def take(self, indices: np.ndarray) -> "WindowList":
        return WindowList(self.sequence[indices], self.start[indices],
                          self.label[indices], self.variant[indices])


@dataclass(frozen=True)
class Plan:
    """Everything phase 1 decides: classes, L, sequences and window lists.

    Attributes:
        config: the run's arguments.
        classes: action names under Train, sorted, then ``no-action``.
        seq_len: L.
        sequences: every sequence in discovery order (Train, then Test;
            subjects and actions sorted).
        split_sequences: split name -> indices into ``sequences``.
        windows: split name -> its windows in their final order.
        warnings: messages about action names and clipped intervals.
        class_subjects: action name -> subjects (Train and Test) that have it.
    """
    config: PreprocessConfig
    classes: Tuple[str, ...]
    seq_len: int
    sequences: Tuple[Sequence, ...]
    split_sequences: Dict[str, Tuple[int, ...]]
    windows: Dict[str, WindowList]
    warnings: Tuple[str, ...]
    class_subjects: Dict[str, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def run_key(self) -> str:
        """sha256 of everything the outputs depend on (and of DEST).

        A killed run's cache files and shards are reused only by a run with the
        same key, so a changed argument or label file never mixes outputs.
        """
        config = self.config
        value = {
            "version": _STATE_VERSION, "src": storage.absolute(config.src),
            "dest": storage.absolute(config.dest), "seq_len": self.seq_len,
            "image_dim": config.image_dim, "modality": config.modality,
            "eval_subjects": list(config.eval_subjects), "batch_size": config.batch_size,
            "shard_size": config.shard_size, "seed": config.seed,
            "offline_augment": config.offline_augment, "classes": list(self.classes),
            "sequences": [[s.source_split, s.subject, s.action, s.num_frames,
                           [[i.pos, i.len] for i in s.intervals]] for s in self.sequences],
        }
        if config.tracks_hand:  # (full frames keep 1.0.x's keys)
            value["hand_crop"] = dataclasses.asdict(config.hand_crop)
        return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class PreprocessSummary:
    """What a run produced.

    Attributes:
        manifest: the written ``dataset.json`` content.
        dataset_dir: ``DEST/DataSet``.
        num_shards: TFRecord files (Train + Eval).
        num_bytes: bytes of the shards and JSON lists.
        frames_decoded: frames decoded by this run (fewer after a restart).
        shards_reused: shards a killed run had completed and this one kept.
        seconds: wall time of the run.
        warnings: action names and clipped intervals.
        class_subjects: action name -> subjects that have it.
    """
    manifest: manifest.Manifest
    dataset_dir: str
    num_shards: int
    num_bytes: int
    frames_decoded: int
    shards_reused: int
    seconds: float
    warnings: Tuple[str, ...] = ()
    class_subjects: Dict[str, int] = field(default_factory=dict)

    def classes_line(self) -> str:
        """Every class with the number of subjects that have it (main.py's 2nd line)."""
        return action_sets.class_summary(self.class_subjects, manifest.NO_ACTION)

    def line(self) -> str:
        """The one-line summary main.py prints."""
        parts = [f"{name} {split.num_windows} windows"
                 for name, split in self.manifest.splits.items()]
        resumed = (f", {self.shards_reused} reused from an interrupted run"
                   if self.shards_reused else "")
        return (f"{', '.join(parts)}; {self.num_shards} shards{resumed}, "
                f"{self.num_bytes / 1e6:.1f} MB in {self.dataset_dir}; "
                f"{self.frames_decoded} frames decoded; {self.seconds:.1f} s")


# ---------------------------------------------------------------------------
# Phase 1: discovery, labels, windows.

def _subfolders_and_files(folder: str) -> Tuple[List[str], List[str]]:
    folders, files = [], []
    for name in storage.listdir(folder):
        (folders if storage.isdir(storage.join(folder, name)) else files).append(name)
    return folders, files


def _discover_subject(source_split: str, subject_dir: str, subject: str) -> List[Tuple]:
    """(source_split, subject, action, folder, label file) of one subject, sorted."""
    folders, files = _subfolders_and_files(subject_dir)
    actions = sorted(name[:-len(LABEL_SUFFIX)] for name in files
                     if name.endswith(LABEL_SUFFIX) and len(name) > len(LABEL_SUFFIX))
    if not actions:
        raise ActrecogError(f"{subject_dir}: subject folder has no label files "
                            f"(<action>{LABEL_SUFFIX})")
    for action in actions:
        if action not in folders:
            raise ActrecogError(f"{storage.join(subject_dir, action + LABEL_SUFFIX)}: "
                                f"label file without its frame folder {action}/")
    for folder in folders:
        if folder not in actions:
            raise ActrecogError(f"{storage.join(subject_dir, folder)}: frame folder "
                                f"without its label file {folder}{LABEL_SUFFIX}")
    return [(source_split, subject, action, storage.join(subject_dir, action),
             storage.join(subject_dir, action + LABEL_SUFFIX)) for action in actions]


def check_dest_outside_src(src: str, dest: str) -> None:
    """Refuses a DEST below SRC (SRC itself is fine): DEST/DataSet would land in the
    source tree, and inside Train/ or Test/ it would break every later run."""
    if storage.is_within(dest, src) and not storage.is_within(src, dest):
        raise ActrecogError(f"{dest}: DEST lies inside SRC {src} - the DataSet would be "
                            f"written into the source tree; choose a folder outside "
                            f"SRC (or SRC itself)")


def discover(src: str) -> List[Tuple]:
    """Every sequence under ``SRC/Train`` and ``SRC/Test``, in a fixed order.

    Returns:
        ``(source_split, subject, action, sequence folder, label file)`` tuples:
        Train before Test, subjects and actions sorted.

    Raises:
        ActrecogError: SRC or a split folder missing, a split without subject
            folders, a subject without label files, a label file without its frame
            folder or the reverse.
    """
    if not storage.isdir(src):
        raise ActrecogError(f"{src}: source folder not found")
    found = []
    for source_split in SOURCE_SPLITS:
        split_dir = storage.join(src, source_split)
        if not storage.isdir(split_dir):
            raise ActrecogError(f"{src}: no {source_split}/ folder (expected "
                                f"{'/ and '.join(SOURCE_SPLITS)}/)")
        subjects, _ = _subfolders_and_files(split_dir)
        if not subjects:
            raise ActrecogError(f"{split_dir}: no subject folders")
        for subject in subjects:
            found.extend(_discover_subject(source_split, storage.join(split_dir, subject),
                                           subject))
    return found


def _count_frames(sequence_dir: str, modality: str) -> int:
    """N by the colour frames (as the original); other modalities must match."""
    num_frames = frames.count_frames(sequence_dir, frames.COUNTING_MODALITY)
    if modality != frames.COUNTING_MODALITY:
        indices = frames.list_frame_indices(sequence_dir, modality)
        present = set(indices)
        for index in range(num_frames):
            if index not in present:
                raise ActrecogError(f"{frames.frame_path(sequence_dir, modality, index)}: "
                                    f"frame missing")
    return num_frames


def _sequence(entry: Tuple, modality: str, clip: bool, warnings: List[str]) -> Sequence:
    source_split, subject, action, folder, label_path = entry
    num_frames = _count_frames(folder, modality)
    raw = labels.read_label_file(label_path)
    intervals, messages = labels.check_intervals(raw, num_frames, label_path, clip)
    warnings.extend(messages)
    return Sequence(source_split, subject, action, storage.absolute(folder), label_path,
                    num_frames, intervals, min(interval.len for interval in raw))


def _select_train(candidates: WindowList, num_classes: int, no_action: int,
                  batch_size: int, seed: int) -> Tuple[WindowList, int]:
    """Balancing and trimming of the Train list, then its shuffled order.

    ``no-action`` windows are cut to (action windows) // (classes), the kept ones
    drawn with ``seed``; the list is cut to a multiple of ``batch_size`` and
    shuffled (one permutation does both: its first ``k * batch_size`` entries).

    Returns:
        ``(windows in their final order, number of windows after balancing)``.
    """
    rng = np.random.default_rng(seed)
    is_action = candidates.label != no_action
    action_indices = np.flatnonzero(is_action)
    no_action_indices = np.flatnonzero(~is_action)
    keep = min(len(no_action_indices), len(action_indices) // num_classes)
    chosen = np.sort(rng.choice(len(no_action_indices), size=keep, replace=False))
    selected = np.sort(np.concatenate([action_indices, no_action_indices[chosen]]))
    total = len(selected) // batch_size * batch_size
    order = rng.permutation(len(selected))[:total]
    return candidates.take(selected[order]), len(selected)


def _split_windows(plan_sequences, indices, classes, seq_len, augmented) -> WindowList:
    """All windows of some sequences in order; with ``augmented``, 32 copies each."""
    parts = {"sequence": [], "start": [], "label": []}
    for index in indices:
        sequence = plan_sequences[index]
        is_action = windows.window_is_action(sequence.intervals, sequence.num_frames, seq_len)
        parts["sequence"].append(np.full(len(is_action), index, np.int32))
        parts["start"].append(windows.window_starts(sequence.num_frames, seq_len)
                              .astype(np.int32))
        parts["label"].append(np.where(is_action, classes.index(sequence.action),
                                       len(classes) - 1).astype(np.int32))
    arrays = {key: (np.concatenate(value) if value else np.zeros(0, np.int32))
              for key, value in parts.items()}
    variant = np.zeros(len(arrays["start"]), np.int32)
    if augmented:
        # Each window followed by its 32 copies, in augment.variants() order.
        copies = augment.NUM_VARIANTS
        arrays = {key: np.repeat(value, copies) for key, value in arrays.items()}
        variant = np.tile(np.arange(copies, dtype=np.int32), len(variant))
    return WindowList(arrays["sequence"], arrays["start"], arrays["label"], variant)


def make_plan(config: PreprocessConfig) -> Plan:
    """Phase 1: discovery, label files, L, classes and every split's windows.

    Reads the folder listings and label files only (no pixels).

    Raises:
        ActrecogError: any problem found without decoding a frame (see
            :func:`discover`, coreLib.data.labels, frames.count_frames), L larger than a
            sequence, an ``eval_subjects`` name that is not a Train subject, a Test
            action unknown to Train, or a Train split smaller than one batch.
    """
    check_dest_outside_src(config.src, config.dest)
    entries = discover(config.src)
    label_files = [action_sets.LabelFile(split, subject, action, label_path)
                   for split, subject, action, _, label_path in entries]
    warnings: List[str] = list(action_sets.check_action_names(label_files, config.actions))
    sequences = tuple(_sequence(entry, config.modality, config.clip_intervals, warnings)
                      for entry in entries)

    seq_len = config.seq_len or min(sequence.shortest_len for sequence in sequences)
    for sequence in sequences:
        if sequence.num_frames < seq_len:
            source = "--seq-len" if config.seq_len else "the shortest label len"
            raise ActrecogError(f"{sequence.path}: {sequence.num_frames} frames, fewer than "
                                f"the window length L={seq_len} ({source})")

    train_subjects = sorted({s.subject for s in sequences if s.source_split == "Train"})
    for name in config.eval_subjects:
        if name not in train_subjects:
            raise ActrecogError(f"--eval-subjects: {name!r} is not a Train subject "
                                f"(Train subjects: {', '.join(train_subjects)})")
    actions = sorted({s.action for s in sequences if s.source_split == "Train"})
    if manifest.NO_ACTION in actions:
        raise ActrecogError(f"{config.src}: an action folder is named "
                            f"{manifest.NO_ACTION!r}, the name of the no-action class")
    classes = tuple(actions) + (manifest.NO_ACTION,)
    for sequence in sequences:
        if sequence.action not in classes:
            raise ActrecogError(f"{sequence.label_path}: action {sequence.action!r} does "
                                f"not occur under Train, so it has no class")

    split_sequences = {
        "Train": tuple(i for i, s in enumerate(sequences) if s.source_split == "Train"
                       and s.subject not in config.eval_subjects),
        "Eval": tuple(i for i, s in enumerate(sequences) if s.source_split == "Train"
                      and s.subject in config.eval_subjects),
        "Test": tuple(i for i, s in enumerate(sequences) if s.source_split == "Test"),
    }
    train_candidates = _split_windows(sequences, split_sequences["Train"], classes, seq_len,
                                      config.offline_augment)
    train_windows, num_balanced = _select_train(train_candidates, len(classes),
                                                len(classes) - 1, config.batch_size,
                                                config.seed)
    split_windows = {
        "Train": train_windows,
        "Eval": _split_windows(sequences, split_sequences["Eval"], classes, seq_len, False),
        "Test": _split_windows(sequences, split_sequences["Test"], classes, seq_len, False),
    }
    if len(train_windows) == 0:
        raise ActrecogError(
            f"--batch-size: the Train split has {num_balanced} windows after balancing "
            f"no-action, fewer than one batch of {config.batch_size}")
    return Plan(config, classes, seq_len, sequences, split_sequences, split_windows,
                tuple(warnings), action_sets.subject_counts(label_files))


# ---------------------------------------------------------------------------
# Phase 2: decoding every frame once.

def cache_folder(config: PreprocessConfig, run_key: str) -> str:
    """Local folder of the decoded sequences: inside DEST, or the temp folder for a URI."""
    name = f"{CACHE_PREFIX}{run_key[:16]}"
    if storage.is_remote(config.dest):
        return os.path.join(tempfile.gettempdir(), f"pyactrecog{name}")
    return os.path.join(storage.absolute(config.dest), name)


def _needed_ranges(plan: Plan) -> Dict[int, Tuple[Tuple[int, int], ...]]:
    """Per Train/Eval sequence, the frame ranges its shard windows read (merged).

    The balanced Train list leaves out most no-action windows, so some frames
    are in no window: they are checked, not resized (see DecodeTask.needed).
    """
    seq_len = plan.seq_len
    ranges: Dict[int, Tuple[Tuple[int, int], ...]] = {}
    for split in manifest.RECORD_SPLITS:
        window_list = plan.windows[split]
        order = np.lexsort((window_list.start, window_list.sequence))
        sequences, starts = window_list.sequence[order], window_list.start[order]
        bounds = np.flatnonzero(np.diff(sequences)) + 1
        for group in np.split(np.arange(len(order)), bounds):
            if not len(group):
                continue
            merged: List[List[int]] = []
            for start in np.unique(starts[group]).tolist():
                if merged and start <= merged[-1][1]:
                    merged[-1][1] = start + seq_len
                else:
                    merged.append([start, start + seq_len])
            ranges[int(sequences[group[0]])] = tuple((a, b) for a, b in merged)
    return ranges


def decode_tasks(plan: Plan, folder: str) -> List[sequence_cache.DecodeTask]:
    """One task per sequence (same index); Train/Eval keep the pixels of the frames
    their windows read, Test is only checked."""
    needed = _needed_ranges(plan)
    tasks = []
    for index, sequence in enumerate(plan.sequences):
        store = sequence.source_split == "Train"
        name = f"sequence_{index}.{'raw' if store else 'checked'}"
        tasks.append(sequence_cache.DecodeTask(
            sequence.path, plan.config.modality, sequence.num_frames,
            plan.config.image_dim, os.path.join(folder, name), store,
            needed.get(index, ()) if store else None,
            plan.config.hand_crop if plan.config.tracks_hand else None))
    return tasks


# An ordered, lazy map: ``mapper(function, items)`` iterates function(item) results.
Mapper = Callable[[Callable, list], Iterator]


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[Mapper]:
    """Yields an ordered map over ``workers`` processes (in this process for 1).

    One pool serves decoding and shard writing, so it starts once.
    """
    if workers == 1:
        sequence_cache.quiet_opencv()
        yield map
        return
    # spawn, not fork: the parent has TensorFlow's threads running, and the
    # workers never need TensorFlow (see sequence_cache).
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=sequence_cache.init_worker) as pool:
        yield lambda function, items: pool.imap(function, items, chunksize=1)


def decode_sequences(plan: Plan, tasks: List[sequence_cache.DecodeTask],
                     progress: bool = True, mapper: Optional[Mapper] = None) -> int:
    """Phase 2: every frame of every sequence read and decoded once, by the workers.

    Results arrive in sequence order, so the first bad frame reported is the same
    whatever the number of workers.

    Args:
        mapper: from :func:`worker_pool`; None starts a pool of
            ``config.workers`` for this call.

    Returns:
        Frames decoded (cache files left by a killed run are not decoded again).

    Raises:
        ActrecogError: the first bad frame (see sequence_cache.decode_sequence).
    """
    if mapper is None:
        with worker_pool(plan.config.workers) as own:
            return decode_sequences(plan, tasks, progress, own)
    ordered = [(split, index) for split in manifest.SPLITS
               for index in plan.split_sequences[split]]
    work = [tasks[index] for _, index in ordered]
    decoded = 0
    bar, bar_split = None, None

    def consume(results):
        nonlocal decoded, bar, bar_split
        for (split, index), count in zip(ordered, results):
            if split != bar_split:
                if bar is not None:
                    bar.close()
                total = sum(plan.sequences[i].num_frames
                            for i in plan.split_sequences[split])
                bar = progress_bar(total, desc=f"{split}: frames decoded", unit="frame",
                                   enabled=progress)
                bar_split = split
            decoded += count
            bar.update(plan.sequences[index].num_frames)
        if bar is not None:
            bar.close()

    consume(mapper(sequence_cache.decode_sequence, work))
    return decoded


# ---------------------------------------------------------------------------
# Phase 3: JSON lists, shards, manifest.

def _entry_texts(plan: Plan, window_list: WindowList, begin: int, end: int) -> List[str]:
    """JSON text of windows ``begin:end``, exactly as ``json.dumps(indent=1, sort_keys=True)``
    writes a list item (built by hand: millions of entries with --offline-augment)."""
    pairs = augment.variants()
    class_texts = [window_lists.encode(name) for name in plan.classes]
    texts = []
    for sequence, start, label, variant in zip(
            window_list.sequence[begin:end].tolist(), window_list.start[begin:end].tolist(),
            window_list.label[begin:end].tolist(), window_list.variant[begin:end].tolist()):
        rotation, flip = pairs[variant]
        texts.append(window_lists.entry_text(
            class_texts[label], window_lists.encode(plan.sequences[sequence].path),
            start, start + plan.seq_len - 1, rotation, flip))
    return texts


def write_window_json(path: str, plan: Plan, window_list: WindowList,
                      chunk: int = 8192) -> int:
    """Writes a split's JSON list atomically, streaming; returns its size in bytes.

    Each entry is ``{"path", "start", "stop", "class", "rotation", "flip"}``; the
    bytes equal ``storage.write_json_atomic(path, entries)``.
    """
    size = 0
    with storage.atomic_path(path) as temp:
        with storage.open_file(temp, "wb") as handle:
            if len(window_list) == 0:
                handle.write(b"[]\n")
                return 3
            for begin in range(0, len(window_list), chunk):
                prefix = "[\n" if begin == 0 else ",\n"
                data = (prefix + ",\n".join(
                    _entry_texts(plan, window_list, begin, begin + chunk))).encode()
                handle.write(data)
                size += len(data)
            handle.write(b"\n]\n")
    return size + 3


def _window_pixels(plan: Plan, reader: sequence_cache.CacheReader,
                   window_list: WindowList) -> np.ndarray:
    """``(B, L, D, D, C)`` pixels of some windows, augmented as their variant says."""
    batch = np.stack([reader.window(sequence, start, plan.seq_len)
                      for sequence, start in zip(window_list.sequence.tolist(),
                                                 window_list.start.tolist())])
    if plan.config.offline_augment and window_list.variant.any():
        pairs = augment.variants()
        rotations = np.array([pairs[v][0] for v in window_list.variant.tolist()], np.int32)
        flips = np.array([pairs[v][1] for v in window_list.variant.tolist()], np.int32)
        batch = augment.transform_windows(batch, rotations, flips).numpy()
    return batch


def write_shard(path: str, plan: Plan, reader: sequence_cache.CacheReader,
                window_list: WindowList, on_window: Callable[[int], None] = lambda n: None
                ) -> sequence_cache.ShardResult:
    """Writes one TFRecord shard atomically in this process (any DEST, augmented
    windows too); records as records.serialize_window makes them (built by
    coreLib.preprocessing.tfrecord_io), hashed while written.
    """
    pairs = augment.variants()

    def write_records(writer: tfrecord_io.RecordWriter) -> None:
        for begin in range(0, len(window_list), _AUGMENT_CHUNK):
            part = window_list.take(np.arange(begin, min(begin + _AUGMENT_CHUNK,
                                                         len(window_list))))
            pixels = _window_pixels(plan, reader, part)
            for offset, (sequence, start, label, variant) in enumerate(zip(
                    part.sequence.tolist(), part.start.tolist(), part.label.tolist(),
                    part.variant.tolist())):
                origin = plan.sequences[sequence]
                rotation, flip = pairs[variant]
                boxes = reader.window_boxes(sequence, start, plan.seq_len)
                if boxes is not None:
                    boxes = tfrecord_io.little_endian_bytes(np.frombuffer(boxes, np.float32))
                writer.write(tfrecord_io.window_record_parts(
                    tfrecord_io.little_endian_bytes(pixels[offset]), pixels[offset].shape,
                    label, origin.subject, origin.action, start, rotation, flip, boxes))
            on_window(len(part))

    num_bytes, sha256 = tfrecord_io.write_record_file(path, write_records)
    return sequence_cache.ShardResult(num_bytes, sha256, False)


def check_record_encoder(plan: Plan) -> None:
    """Compares coreLib.preprocessing.tfrecord_io's bytes with records.serialize_window (the
    definition of a record) on one window of this run's shape, before any shard
    is written: a difference is a bug, never a silently different dataset.
    """
    config = plan.config
    spec = frames.modality_spec(config.modality)
    shape = (plan.seq_len, config.image_dim, config.image_dim, spec.channels)
    pixels = np.arange(int(np.prod(shape)), dtype=np.uint32).astype(spec.dtype).reshape(shape)
    first = plan.sequences[0]
    arguments = (plan.num_classes - 1, first.subject, first.action, 1, 0, 0)
    made = b"".join(tfrecord_io.window_record_parts(tfrecord_io.little_endian_bytes(pixels),
                                                    shape, *arguments))
    if made != records.serialize_window(pixels, *arguments):
        raise RuntimeError("coreLib.preprocessing.tfrecord_io's window record differs from "
                           "records.serialize_window")


def _remove(path: str) -> None:
    if storage.exists(path):
        storage.remove(path)


def _clear_outputs(dataset_dir: str) -> None:
    """Removes the outputs of an earlier run with other arguments (or of unknown origin)."""
    _remove(manifest.manifest_path(dataset_dir))
    for split in manifest.RECORD_SPLITS:
        folder = storage.join(dataset_dir, manifest.TFRECORD_FOLDER, split)
        for name in storage.listdir(folder):
            if name.startswith(f"{split}_") and name.endswith(".tfrecord"):
                storage.remove(storage.join(folder, name))
    for name in storage.listdir(dataset_dir):
        if name.startswith("mode:") and name.endswith(".json"):
            storage.remove(storage.join(dataset_dir, name))


def _read_state(path: str) -> Optional[str]:
    if not storage.exists(path):
        return None
    try:
        return json.loads(storage.read_bytes(path).decode("utf-8")).get("run_key")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None


def _class_counts(plan: Plan, window_list: WindowList) -> Dict[str, int]:
    counts = np.bincount(window_list.label, minlength=plan.num_classes)
    return {name: int(count) for name, count in zip(plan.classes, counts)}


def write_outputs(plan: Plan, tasks: List[sequence_cache.DecodeTask], run_key: str,
                  progress: bool = True, mapper: Optional[Mapper] = None
                  ) -> Tuple[manifest.Manifest, Dict[str, int]]:
    """Phase 3: shards (reusing complete ones of a killed run), JSON lists, manifest last.

    Args:
        mapper: from :func:`worker_pool`: the shards of a local DEST without
            --offline-augment are written by its processes, one per task, while
            this one writes the JSON lists. None: this process writes them all.

    Returns:
        ``(manifest, counts)``, counts with ``num_bytes``, ``num_shards`` and
        ``shards_reused``.
    """
    config = plan.config
    dataset_dir = storage.join(config.dest, manifest.DATASET_FOLDER)
    folders = [dataset_dir] + [storage.join(dataset_dir, manifest.TFRECORD_FOLDER, split)
                               for split in manifest.RECORD_SPLITS]
    for folder in folders:
        storage.makedirs(folder)
        storage.remove_temporaries(folder)
    state_path = storage.join(dataset_dir, STATE_NAME)
    if _read_state(state_path) != run_key:
        # Shards on disk are only trusted when the state file says they were
        # written with these arguments.
        _clear_outputs(dataset_dir)
        storage.write_json_atomic(state_path, {"run_key": run_key})
    else:
        _remove(manifest.manifest_path(dataset_dir))

    counts = {"num_bytes": 0, "num_shards": 0, "shards_reused": 0}
    in_workers = (mapper is not None and not storage.is_remote(config.dest)
                  and not config.offline_augment)
    pending = None
    if in_workers:
        check_record_encoder(plan)
        jobs = _shard_jobs(plan, tasks, dataset_dir)
        # Lazy: the workers start on the shards while the JSON lists are written.
        pending = (jobs, mapper(sequence_cache.write_shard, [job[2] for job in jobs]))
    json_names = {}
    for split in manifest.SPLITS:
        json_names[split] = manifest.split_json_name(
            split, len(plan.windows[split]), plan.seq_len)
        counts["num_bytes"] += write_window_json(storage.join(dataset_dir, json_names[split]),
                                                 plan, plan.windows[split])
    if pending is not None:
        shards = _collect_worker_shards(plan, *pending, counts, progress)
    else:
        with sequence_cache.CacheReader(tasks) as reader:
            shards = {split: _write_split_shards(plan, reader, dataset_dir, split,
                                                 plan.windows[split], counts, progress)
                      for split in manifest.RECORD_SPLITS if len(plan.windows[split])}
    splits = {}
    spec = frames.modality_spec(config.modality)
    for split in manifest.SPLITS:
        window_list = plan.windows[split]
        indices = plan.split_sequences[split]
        splits[split] = manifest.SplitInfo(
            name=split, json_name=json_names[split], num_sequences=len(indices),
            num_windows=len(window_list),
            subjects=tuple(sorted({plan.sequences[i].subject for i in indices})),
            shards=tuple(shards.get(split, ())),
            class_counts=_class_counts(plan, window_list))
    result = manifest.Manifest(
        classes=plan.classes, seq_len=plan.seq_len, image_dim=config.image_dim,
        channels=spec.channels, modality=config.modality, dtype=spec.dtype,
        offline_augment=config.offline_augment, splits=splits,
        source=storage.absolute(config.src), frames=config.frames,
        hand_crop=dataclasses.asdict(config.hand_crop) if config.tracks_hand else None)
    manifest.write_manifest(dataset_dir, result)
    _remove(state_path)
    return result, counts


def _split_parts(plan: Plan, split: str) -> Iterator[Tuple[int, WindowList]]:
    """(shard number, its windows) of a split, in order."""
    window_list, shard_size = plan.windows[split], plan.config.shard_size
    for number, begin in enumerate(range(0, len(window_list), shard_size)):
        yield number, window_list.take(np.arange(begin, min(begin + shard_size,
                                                            len(window_list))))


def _shard_jobs(plan: Plan, tasks: List[sequence_cache.DecodeTask], dataset_dir: str
                ) -> List[Tuple[str, str, sequence_cache.ShardTask]]:
    """(split, shard name, worker task) of every Train and Eval shard, in order."""
    jobs = []
    for split in manifest.RECORD_SPLITS:
        for number, part in _split_parts(plan, split):
            used, source = np.unique(part.sequence, return_inverse=True)
            relative = manifest.shard_name(split, number)
            jobs.append((split, relative, sequence_cache.ShardTask(
                path=storage.join(dataset_dir, relative),
                caches=tuple(tasks[i] for i in used.tolist()),
                subjects=tuple(plan.sequences[i].subject for i in used.tolist()),
                actions=tuple(plan.sequences[i].action for i in used.tolist()),
                seq_len=plan.seq_len, source=source.astype(np.int32).ravel(),
                start=part.start, label=part.label)))
    return jobs


def _collect_worker_shards(plan: Plan, jobs, results: Iterator, counts: Dict[str, int],
                           progress: bool) -> Dict[str, List[manifest.ShardInfo]]:
    """ShardInfo per split from the workers' results (in shard order), with the bars."""
    shards: Dict[str, List[manifest.ShardInfo]] = {}
    bar = None
    for (split, relative, task), result in zip(jobs, results):
        if split not in shards:
            if bar is not None:
                bar.close()
            bar = progress_bar(len(plan.windows[split]), desc=f"{split}: windows written",
                               unit="window", enabled=progress)
            shards[split] = []
        bar.update(len(task.start))
        shards[split].append(manifest.ShardInfo(relative, len(task.start), result.sha256))
        counts["num_bytes"] += result.num_bytes
        counts["num_shards"] += 1
        counts["shards_reused"] += int(result.reused)
    if bar is not None:
        bar.close()
    return shards


def _write_split_shards(plan: Plan, reader, dataset_dir: str, split: str,
                        window_list: WindowList, counts: Dict[str, int],
                        progress: bool) -> List[manifest.ShardInfo]:
    """The shards of one split, written by this process in turn."""
    shards = []
    with progress_bar(len(window_list), desc=f"{split}: windows written", unit="window",
                      enabled=progress) as bar:
        for number, part in _split_parts(plan, split):
            relative = manifest.shard_name(split, number)
            path = storage.join(dataset_dir, relative)
            if storage.exists(path):
                counts["shards_reused"] += 1
                bar.update(len(part))
                result = sequence_cache.ShardResult(storage.file_size(path),
                                                    storage.sha256_of(path), True)
            else:
                result = write_shard(path, plan, reader, part, bar.update)
            shards.append(manifest.ShardInfo(relative, len(part), result.sha256))
            counts["num_bytes"] += result.num_bytes
            counts["num_shards"] += 1
    return shards


# ---------------------------------------------------------------------------

def _missing_root(path: str) -> Optional[str]:
    """The outermost folder of a local ``path`` that does not exist yet (None if it does)."""
    if storage.is_remote(path):
        return None
    path = os.path.abspath(path)
    missing = None
    while not os.path.exists(path):
        missing = path
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def _warn_to_stderr(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def run_preprocessing(config: PreprocessConfig, progress: bool = True,
                      warn: Callable[[str], None] = _warn_to_stderr) -> PreprocessSummary:
    """main.py SRC DEST: windows, JSON lists, TFRecord shards and ``dataset.json``.

    Args:
        config: the run's arguments.
        progress: report progress on stderr (bars on a terminal, else plain lines).
        warn: receives each warning (action names, clipped label intervals).

    Returns:
        A summary of what was written.

    Raises:
        ActrecogError: bad input (naming the file or argument). Nothing is left
            behind: everything is checked before the first output file is written,
            and a bad frame found while decoding removes what this run created.
    """
    started = time.monotonic()
    plan = make_plan(config)
    for message in plan.warnings:
        warn(message)
    created_root = _missing_root(config.dest)
    storage.check_writable(config.dest)
    run_key = plan.run_key()
    folder = cache_folder(config, run_key)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ActrecogError(f"{folder}: cannot create the decoding cache "
                            f"({error.strerror or error})") from None
    sequence_cache.remove_temporaries(folder)
    tasks = decode_tasks(plan, folder)
    with worker_pool(min(config.workers, len(plan.sequences))) as mapper:
        try:
            frames_decoded = decode_sequences(plan, tasks, progress, mapper)
        except ActrecogError:
            shutil.rmtree(folder, ignore_errors=True)
            if created_root:
                shutil.rmtree(created_root, ignore_errors=True)
            raise
        if not storage.is_remote(config.dest):
            # Caches of killed runs with other arguments.
            parent = os.path.dirname(folder)
            for name in os.listdir(parent):
                if name.startswith(CACHE_PREFIX) and os.path.join(parent, name) != folder:
                    shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        result, counts = write_outputs(plan, tasks, run_key, progress, mapper)
    shutil.rmtree(folder, ignore_errors=True)
    return PreprocessSummary(
        manifest=result, dataset_dir=storage.join(config.dest, manifest.DATASET_FOLDER),
        num_shards=counts["num_shards"], num_bytes=counts["num_bytes"],
        frames_decoded=frames_decoded, shards_reused=counts["shards_reused"],
        seconds=time.monotonic() - started, warnings=plan.warnings,
        class_subjects=plan.class_subjects)
