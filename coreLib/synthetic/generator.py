"""A synthetic hand-action dataset in the exact BII layout: the driver.

The published archive cannot be fetched on the machines this project runs on, so
tests, benchmarks and the demo use data generated here. The layout is the one
``main.py`` reads (see the dataset spec)::

    DEST/Train/<subject>/<action>.xml             OpenCV FileStorage label file
    DEST/Train/<subject>/<action>/depth_<i>.png   (H, W) uint16, millimetres
    DEST/Train/<subject>/<action>/confi_<i>.png   (H, W) uint16, IR return
    DEST/Train/<subject>/<action>/color_<i>.png   (H, W, 3) uint8, BGR on disk
    DEST/Test/...                                 same shape
    DEST/TestDetection/<name>.xml                 long sequences of several actions
    DEST/TestDetection/<name>/{depth,confi,color}_<i>.png

The package, one way down: ``config`` (what to generate), ``randomness`` and
``drawing`` (shared by the families), the families ``pose`` and ``trajectory``
behind ``families`` (:data:`coreLib.synthetic.families.FAMILIES`), ``plans``
(where the performances lie), ``writing`` (frames and label files),
``detection`` (TestDetection sequences on the plans), ``full_size`` (the
published size), this driver, and the command line in ``__main__``.

Everything is deterministic: each sequence draws from its own random generator
seeded by (seed, split, subject, action), so the bytes do not depend on the
number of worker processes or on the order they finish in.
"""

import multiprocessing
import os
import shutil
import time
from typing import Tuple

import cv2

from coreLib.errors import ActrecogError
from coreLib.progress import progress_bar
# The public names of the package, importable from here as before the split.
from coreLib.synthetic.config import (  # noqa: F401
    ACTIONS, DETECTION_SPLIT, FULL_SIZE_REPS, HAND_SIZES, MAX_DETECTION_SEQUENCES,
    SPLITS, STYLES, TEST_SPLIT, TEST_SUBJECTS, TRAIN_SPLIT, TRAIN_SUBJECTS,
    SyntheticConfig)
from coreLib.synthetic.detection import plan_detection, write_detection_sequence
from coreLib.synthetic.full_size import full_size_config  # noqa: F401
from coreLib.synthetic.plans import SequencePlan, plan_dataset, plan_sequence  # noqa: F401
from coreLib.synthetic.writing import label_xml, render_sequence  # noqa: F401
from coreLib.synthetic.writing import write_sequence


def _write_task(task) -> Tuple[str, int]:
    """Writes one sequence of a ``(dest, config, plan)`` task; returns ``(split, frames)``."""
    dest, config, plan = task
    if not isinstance(plan, SequencePlan):  # a TestDetection sequence
        return DETECTION_SPLIT, write_detection_sequence(dest, config, plan)
    return plan.split, write_sequence(dest, config, plan)


def _init_worker() -> None:
    """Sets up a worker process."""
    cv2.setNumThreads(1)  # one sequence per process; no nested thread pools


def _prepare_dest(dest: str, overwrite: bool) -> None:
    """Checks ``dest`` and clears the splits an ``overwrite`` replaces.

    Raises:
        ActrecogError: a URI, not a folder, not writable, or holding a split
            without ``overwrite``.
    """
    if "://" in dest:
        raise ActrecogError(f"{dest}: the generator writes local folders only")
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise ActrecogError(f"{dest}: exists and is not a folder")
    existing = [split for split in SPLITS + (DETECTION_SPLIT,)
                if os.path.exists(os.path.join(dest, split))]
    if existing and not overwrite:
        raise ActrecogError(f"{dest}: already holds {' and '.join(existing)}/ "
                            "(use --overwrite to replace)")
    try:
        os.makedirs(dest, exist_ok=True)
        for split in existing:
            shutil.rmtree(os.path.join(dest, split))
        probe = os.path.join(dest, f".write-probe.tmp-{os.getpid()}")
        with open(probe, "wb") as handle:
            handle.write(b"ok")
        os.remove(probe)
    except OSError as error:
        raise ActrecogError(f"{dest}: not writable ({error.strerror or error})") from None


def _run_tasks(tasks: list, workers: int, progress: bool):
    """Yields ``(split, frames written)`` per sequence task, in completion order."""
    bar = progress_bar(len(tasks), desc="synthetic", unit="seq", enabled=progress)
    pool = None
    try:
        if workers == 1 or len(tasks) == 1:
            results = map(_write_task, tasks)
        else:
            # spawn: the parent may have TensorFlow loaded, whose threads do not
            # survive a fork safely; the workers only need numpy and cv2.
            pool = multiprocessing.get_context("spawn").Pool(min(workers, len(tasks)),
                                                             initializer=_init_worker)
            results = pool.imap_unordered(_write_task, tasks)
        for result in results:
            yield result
            bar.update(1)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        bar.close()


def generate_dataset(dest: str, config: SyntheticConfig, workers: int = 1,
                     progress: bool = True, overwrite: bool = False) -> dict:
    """Writes a synthetic dataset in the BII layout under ``dest``.

    Args:
        dest: a local folder (created if needed).
        config: what to generate.
        workers: processes rendering sequences in parallel (the output does not
            depend on it).
        progress: report progress over sequences on stderr (a bar on a terminal).
        overwrite: replace existing ``dest/Train``, ``dest/Test`` and
            ``dest/TestDetection`` folders.

    Returns:
        Summary: ``{"splits": {split: {"sequences", "frames", "performances"}},
        "sequences", "frames", "min_len", "seconds"}``.

    Raises:
        ActrecogError: ``dest`` is a remote URI, not a folder, not writable, or
            already holds Train/, Test/ or TestDetection/ without ``overwrite``.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ActrecogError(f"workers must be a positive integer, got {workers!r}")
    _prepare_dest(dest, overwrite)
    started = time.perf_counter()
    plans = plan_dataset(config)
    detection_plans = plan_detection(config)
    summary = {split: {"sequences": 0, "frames": 0, "performances": 0}
               for split in SPLITS + (DETECTION_SPLIT,)}
    for plan in plans:
        summary[plan.split]["sequences"] += 1
        summary[plan.split]["performances"] += len(plan.intervals)
    for plan in detection_plans:
        summary[DETECTION_SPLIT]["sequences"] += 1
        summary[DETECTION_SPLIT]["performances"] += len(plan.intervals)
    # The long TestDetection sequences first, so that they do not finish alone.
    tasks = [(dest, config, plan) for plan in detection_plans + plans]
    for split, frames in _run_tasks(tasks, workers, progress):
        summary[split]["frames"] += frames
    splits = {split: counts for split, counts in summary.items() if counts["sequences"]}
    return {
        "splits": splits,
        "sequences": sum(counts["sequences"] for counts in splits.values()),
        "frames": sum(counts["frames"] for counts in splits.values()),
        "min_len": min(length for plan in plans for _, length in plan.intervals),
        "seconds": round(time.perf_counter() - started, 3),
    }
