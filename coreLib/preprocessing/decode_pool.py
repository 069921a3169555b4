"""main.py's phase 2: every frame decoded once, by a pool of worker processes.

One task per sequence (:class:`coreLib.preprocessing.sequence_cache.DecodeTask`):
Train/Eval sequences keep the resized pixels of the frames their windows read in
a cache file, Test sequences are only checked (score.py reads them). The same
pool then writes the shards of a local DEST, so it starts once.
"""

import contextlib
import multiprocessing
import os
import tempfile
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import manifest
from coreLib.preprocessing import sequence_cache
from coreLib.progress import progress_bar
from coreLib.preprocessing.plan import Plan, PreprocessConfig

CACHE_PREFIX = ".preprocess-cache-"


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
            plan.config.active_hand_crop))
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
                     progress: bool = True, mapper: Optional[Mapper] = None
                     ) -> sequence_cache.Decoded:
    """Phase 2: every frame of every sequence read and decoded once, by the workers.

    Results arrive in sequence order, so the first bad frame reported is the same
    whatever the number of workers.

    Args:
        mapper: from :func:`worker_pool`; None starts a pool of
            ``config.workers`` for this call.

    Returns:
        Frames decoded (cache files left by a killed run are not decoded again)
        and, of those, frames without a hand (hand-centred frames).

    Raises:
        ActrecogError: the first bad frame (see sequence_cache.decode_sequence).
    """
    if mapper is None:
        with worker_pool(plan.config.workers) as own:
            return decode_sequences(plan, tasks, progress, own)
    ordered = [(split, index) for split in manifest.SPLITS
               for index in plan.split_sequences[split]]
    work = [tasks[index] for _, index in ordered]
    decoded, without_hand = 0, 0
    bar, bar_split = None, None

    def consume(results):
        nonlocal decoded, without_hand, bar, bar_split
        for (split, index), count in zip(ordered, results):
            if split != bar_split:
                if bar is not None:
                    bar.close()
                total = sum(plan.sequences[i].num_frames
                            for i in plan.split_sequences[split])
                bar = progress_bar(total, desc=f"{split}: frames decoded", unit="frame",
                                   enabled=progress)
                bar_split = split
            decoded += count.frames
            without_hand += count.without_hand
            bar.update(plan.sequences[index].num_frames)
        if bar is not None:
            bar.close()

    consume(mapper(sequence_cache.decode_sequence, work))
    return sequence_cache.Decoded(decoded, without_hand)
