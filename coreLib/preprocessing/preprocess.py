"""main.py's pipeline: a BII-layout SRC turned into windows, JSON lists and shards.

Phases, in this order:

1. Discovery and labels (cheap, no pixels; :mod:`.discovery`, :mod:`.plan`):
   find every sequence under
   ``SRC/Train`` and ``SRC/Test``, count its frames, read and check its label file,
   choose L, build every split's window list (arrays of sequence, start, label,
   augmentation variant) and the shuffled Train order. Every check that needs no
   pixels fails here, before anything is written.
2. Decoding (:mod:`.decode_pool`): worker processes read, check, decode and
   resize every frame of the chosen modality exactly once, into one small cache
   file per sequence (:mod:`.sequence_cache`). Test frames are only checked: score.py reads them.
   A bad frame stops the run and removes what it created.
3. Writing (this module): the shards, windows cut from the cache files
   (:mod:`.shard_writer`), and the JSON lists (:mod:`coreLib.data.window_lists`);
   then ``dataset.json``, last. For a local DEST the same worker processes write
   the shards, one per task, while this process writes the JSON lists; for a
   ``gs://`` DEST or with --offline-augment (which rotates with TensorFlow) this
   process writes them in turn. Every file appears under
   its final name in one step (coreLib.storage), so a killed run can be started
   again with the same arguments: it reuses complete cache files and shards and
   ends with the same bytes as an uninterrupted run (:mod:`.resume_state`).

Memory does not grow with the dataset: each process holds the window index
arrays (a few bytes per window) and at most one shard's worth of pixels.
"""

import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import action_sets, frames, manifest, window_lists
from coreLib.errors import ActrecogError
from coreLib.preprocessing import augment, records, resume_state, sequence_cache, tfrecord_io
from coreLib.preprocessing.decode_pool import (Mapper, cache_folder, decode_sequences,
                                               decode_tasks, worker_pool)
from coreLib.preprocessing.plan import Plan, PreprocessConfig, WindowList, make_plan
from coreLib.preprocessing.shard_writer import ShardTask, write_shard
from coreLib.progress import progress_bar

__all__ = ["PreprocessConfig", "PreprocessSummary", "make_plan", "run_preprocessing",
           "write_outputs"]


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
        frames_without_hand: hand-centred frames: of the frames decoded, those
            where the tracker found no hand (the box held); None for full frames.
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
    frames_without_hand: Optional[int] = None

    def classes_line(self) -> str:
        """Every class with the number of subjects that have it (main.py's 2nd line)."""
        return action_sets.class_summary(self.class_subjects, manifest.NO_ACTION)

    def line(self) -> str:
        """The one-line summary main.py prints."""
        parts = [f"{name} {split.num_windows} windows"
                 for name, split in self.manifest.splits.items()]
        resumed = (f", {self.shards_reused} reused from an interrupted run"
                   if self.shards_reused else "")
        no_hand = ("" if self.frames_without_hand is None
                   else f" ({self.frames_without_hand} without a hand)")
        return (f"{', '.join(parts)}; {self.num_shards} shards{resumed}, "
                f"{self.num_bytes / 1e6:.1f} MB in {self.dataset_dir}; "
                f"{self.frames_decoded} frames decoded{no_hand}; {self.seconds:.1f} s")


def check_record_encoder(plan: Plan) -> None:
    """Compares coreLib.preprocessing.tfrecord_io's bytes with records.serialize_window (the
    definition of a record) on one window of this run's shape, before any shard
    is written: a difference is a bug, never a silently different dataset.
    """
    config = plan.config
    spec = frames.modality_spec(config.modality)
    shape = (plan.seq_len, config.image_dim, config.image_dim, config.frame_channels)
    pixels = np.arange(int(np.prod(shape)), dtype=np.uint32).astype(spec.dtype).reshape(shape)
    first = plan.sequences[0]
    arguments = (plan.num_classes - 1, first.subject, first.action, 1, 0, 0)
    made = b"".join(tfrecord_io.window_record_parts(tfrecord_io.little_endian_bytes(pixels),
                                                    shape, *arguments))
    if made != records.serialize_window(pixels, *arguments):
        raise RuntimeError("coreLib.preprocessing.tfrecord_io's window record differs from "
                           "records.serialize_window")


def _class_counts(plan: Plan, window_list: WindowList) -> Dict[str, int]:
    counts = np.bincount(window_list.label, minlength=plan.num_classes)
    return {name: int(count) for name, count in zip(plan.classes, counts)}


def _augmentation(window_list: WindowList) -> Tuple[np.ndarray, np.ndarray]:
    """``(rotation, flip)`` ``(W,)`` int32 of each window's --offline-augment variant."""
    pairs = augment.variants()
    variants = window_list.variant.tolist()
    return (np.array([pairs[v][0] for v in variants], np.int32),
            np.array([pairs[v][1] for v in variants], np.int32))


def _rotate_and_flip(pixels: np.ndarray, rotations: np.ndarray, flips: np.ndarray
                     ) -> np.ndarray:
    """The shard writer's transform of --offline-augment windows (TensorFlow)."""
    return augment.transform_windows(pixels, rotations, flips).numpy()


def write_window_json(path: str, plan: Plan, window_list: WindowList) -> int:
    """Writes a split's JSON list (:func:`coreLib.data.window_lists.write_window_list`);
    returns its size in bytes."""
    rotation, flip = _augmentation(window_list)
    return window_lists.write_window_list(path, window_lists.WindowColumns(
        plan.seq_len, plan.classes, [sequence.path for sequence in plan.sequences],
        window_list.sequence, window_list.start, window_list.label, rotation, flip))


def _split_parts(plan: Plan, split: str) -> Iterator[Tuple[int, WindowList]]:
    """(shard number, its windows) of a split, in order."""
    window_list, shard_size = plan.windows[split], plan.config.shard_size
    for number, begin in enumerate(range(0, len(window_list), shard_size)):
        yield number, window_list.take(np.arange(begin, min(begin + shard_size,
                                                            len(window_list))))


def _shard_jobs(plan: Plan, tasks: List[sequence_cache.DecodeTask], dataset_dir: str
                ) -> List[Tuple[str, str, ShardTask]]:
    """(split, shard name, writer task) of every Train and Eval shard, in order."""
    jobs = []
    for split in manifest.RECORD_SPLITS:
        for number, part in _split_parts(plan, split):
            used, source = np.unique(part.sequence, return_inverse=True)
            relative = manifest.shard_name(split, number)
            rotation, flip = (_augmentation(part) if plan.config.offline_augment
                              else (None, None))
            jobs.append((split, relative, ShardTask(
                path=storage.join(dataset_dir, relative),
                caches=tuple(tasks[i] for i in used.tolist()),
                subjects=tuple(plan.sequences[i].subject for i in used.tolist()),
                actions=tuple(plan.sequences[i].action for i in used.tolist()),
                seq_len=plan.seq_len, source=source.astype(np.int32).ravel(),
                start=part.start, label=part.label, rotation=rotation, flip=flip)))
    return jobs


def _collect_shards(plan: Plan, jobs, results: Iterator, counts: Dict[str, int],
                           progress: bool) -> Dict[str, List[manifest.ShardInfo]]:
    """ShardInfo per split from the writers' results (in shard order), with the bars."""
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


def _split_infos(plan: Plan, json_names: Dict[str, str],
                 shards: Dict[str, List[manifest.ShardInfo]]) -> Dict[str, manifest.SplitInfo]:
    """The manifest's entry of every split."""
    splits = {}
    for split in manifest.SPLITS:
        window_list = plan.windows[split]
        indices = plan.split_sequences[split]
        splits[split] = manifest.SplitInfo(
            name=split, json_name=json_names[split], num_sequences=len(indices),
            num_windows=len(window_list),
            subjects=tuple(sorted({plan.sequences[i].subject for i in indices})),
            shards=tuple(shards.get(split, ())),
            class_counts=_class_counts(plan, window_list))
    return splits


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
    state_path = resume_state.prepare_dataset_dir(dataset_dir, run_key)
    counts = {"num_bytes": 0, "num_shards": 0, "shards_reused": 0}
    jobs = _shard_jobs(plan, tasks, dataset_dir)
    shard_tasks = [task for _, _, task in jobs]
    if (mapper is not None and not storage.is_remote(config.dest)
            and not config.offline_augment):
        check_record_encoder(plan)
        # Lazy: the workers start on the shards while the JSON lists are written.
        results = mapper(write_shard, shard_tasks)
    else:
        transform = _rotate_and_flip if config.offline_augment else None
        results = (write_shard(task, transform) for task in shard_tasks)
    json_names = {}
    for split in manifest.SPLITS:
        json_names[split] = manifest.split_json_name(
            split, len(plan.windows[split]), plan.seq_len)
        counts["num_bytes"] += write_window_json(storage.join(dataset_dir, json_names[split]),
                                                 plan, plan.windows[split])
    shards = _collect_shards(plan, jobs, results, counts, progress)
    spec = frames.modality_spec(config.modality)
    result = manifest.Manifest(
        classes=plan.classes, seq_len=plan.seq_len, image_dim=config.image_dim,
        channels=config.frame_channels, modality=config.modality, dtype=spec.dtype,
        offline_augment=config.offline_augment, splits=_split_infos(plan, json_names, shards),
        source=storage.absolute(config.src), frames=config.frames,
        hand_crop=config.active_hand_crop and dataclasses.asdict(config.active_hand_crop))
    manifest.write_manifest(dataset_dir, result)
    resume_state.finish(state_path)
    return result, counts


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
    """The default ``warn`` of :func:`run_preprocessing`."""
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
            decoded = decode_sequences(plan, tasks, progress, mapper)
        except ActrecogError:
            shutil.rmtree(folder, ignore_errors=True)
            if created_root:
                shutil.rmtree(created_root, ignore_errors=True)
            raise
        if not storage.is_remote(config.dest):
            resume_state.remove_stale_caches(folder)
        result, counts = write_outputs(plan, tasks, run_key, progress, mapper)
    shutil.rmtree(folder, ignore_errors=True)
    return PreprocessSummary(
        manifest=result, dataset_dir=storage.join(config.dest, manifest.DATASET_FOLDER),
        num_shards=counts["num_shards"], num_bytes=counts["num_bytes"],
        frames_decoded=decoded.frames, shards_reused=counts["shards_reused"],
        seconds=time.monotonic() - started, warnings=plan.warnings,
        class_subjects=plan.class_subjects,
        frames_without_hand=decoded.without_hand if config.tracks_hand else None)
