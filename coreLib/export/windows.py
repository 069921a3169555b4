"""The real windows export.py measures and calibrates on.

* parity: Test windows (with their labels) of the DataSet the model was trained
  on, or of ``--parity-json``; seeded random windows when none is reachable;
* calibration (int8): Train windows of the DataSet (Eval when it has no Train);
* drift: a long stream of TestDetection frames (the dataset's detection split).

TensorFlow-free: the rotations and flips a window JSON asks for are applied by the
``transform`` the caller hands in (export.py: the traced
:func:`coreLib.preprocessing.augment.transform_windows`).
"""

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import (frames, hand_crop as hand_crop_lib, labels as labels_lib,
                          manifest as manifest_lib, window_lists)
from coreLib.errors import ActrecogError
from coreLib.export import config as config_lib
from coreLib.inference import frame_reader

CALIBRATION_SPLITS = ("Train", "Eval")
TEST_SPLIT = "Test"

# transform(windows (B, L, D, D, C) stored dtype, rotations (B,) int32 degrees,
# flips (B,) int32 ids 0-3) -> the windows rotated and flipped, same shape and dtype.
WindowTransform = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Windows:
    """Windows read for a check.

    Attributes:
        pixels: ``(N, L, D, D, C)`` stored dtype.
        labels: ``(N,)`` int64 class indices (the model's order), None for random.
        source: where they came from (recorded in export.json).
    """
    pixels: np.ndarray
    labels: Optional[np.ndarray]
    source: str


def _fits(dataset: Optional[manifest_lib.Manifest], manifest: manifest_lib.Manifest) -> bool:
    return (dataset is not None and dataset.window_shape == manifest.window_shape
            and tuple(dataset.classes) == tuple(manifest.classes)
            and dataset.modality == manifest.modality and dataset.frames == manifest.frames)


def split_json(dataset_dir: str, dataset: manifest_lib.Manifest, split: str) -> Optional[str]:
    """The split's window JSON in the DataSet folder, None when absent."""
    if split not in dataset.splits:
        return None
    path = storage.join(dataset_dir, dataset.splits[split].json_name)
    return path if storage.exists(path) else None


def read_windows(json_path: str, manifest: manifest_lib.Manifest, count: int,
                 transform: WindowTransform, batch_size: int = 64) -> Windows:
    """At most ``count`` windows spread over the JSON (every class, every sequence),
    with the rotations and flips the JSON asks for applied by ``transform``.

    Raises:
        ActrecogError: a bad JSON or a missing frame.
    """
    listed = window_lists.read_window_list(json_path, manifest.seq_len, manifest.classes)
    if not listed:
        raise ActrecogError(f"{json_path}: holds no windows")
    picked = np.unique(np.linspace(0, len(listed) - 1, min(count, len(listed))).astype(int))
    chosen = [listed[number] for number in picked]
    frame_reader.check_frames_exist(chosen, manifest.modality)
    pixels = np.empty((len(chosen),) + manifest.window_shape, manifest.dtype)
    for numbers, batch, rotations, flips in frame_reader.iterate_batches(chosen, manifest,
                                                                         batch_size):
        if rotations.any() or flips.any():
            batch = transform(batch, rotations, flips)
        pixels[numbers] = batch
    labels = np.array([window.label for window in chosen], np.int64)
    return Windows(pixels, labels, f"{storage.absolute(json_path)} ({len(chosen)} of "
                                   f"{len(listed)} windows)")


def parity_windows(config: config_lib.ExportConfig, manifest: manifest_lib.Manifest,
                   dataset_dir: Optional[str], dataset: Optional[manifest_lib.Manifest],
                   transform: WindowTransform) -> Windows:
    """``--parity-json``'s windows, else the DataSet's Test windows, else random ones
    (``transform``: see :func:`read_windows`).

    Raises:
        ActrecogError: a bad Test JSON or a missing frame.
    """
    json_path = config.parity_json
    if json_path is None and dataset_dir and _fits(dataset, manifest):
        json_path = split_json(dataset_dir, dataset, TEST_SPLIT)
    if json_path is not None:
        return read_windows(json_path, manifest, config.parity_windows, transform)
    rng = np.random.default_rng(config_lib.PARITY_SEED)
    top = int(np.iinfo(manifest.dtype).max) + 1
    count = min(config.parity_windows, 64)
    pixels = rng.integers(0, top, (count,) + manifest.window_shape).astype(manifest.dtype)
    return Windows(pixels, None, f"random (seed {config_lib.PARITY_SEED}, {count} windows: "
                                 f"no Test JSON reachable)")


def calibration_windows(config: config_lib.ExportConfig, manifest: manifest_lib.Manifest,
                        dataset_dir: Optional[str], dataset: Optional[manifest_lib.Manifest],
                        transform: WindowTransform) -> Windows:
    """The int8 files' calibration windows: Train (else Eval) of ``--calibration``
    or of the model's DataSet (``transform``: see :func:`read_windows`).

    Raises:
        ActrecogError: no calibration data (one line), a bad JSON, a missing frame.
    """
    if config.calibration_dir:
        dataset_dir = config.calibration_dir
        dataset = manifest_lib.load_manifest(dataset_dir)
        if not _fits(dataset, manifest):
            raise ActrecogError(f"{dataset_dir}: --calibration DataSet holds windows "
                                f"{list(dataset.window_shape)} of {dataset.modality} and "
                                f"classes {', '.join(dataset.classes)}, not the model's")
    if dataset_dir and _fits(dataset, manifest):
        for split in CALIBRATION_SPLITS:
            json_path = split_json(dataset_dir, dataset, split)
            if json_path:
                return read_windows(json_path, manifest, config.calibration_windows,
                                    transform)
    if config.random_calibration:
        rng = np.random.default_rng(config_lib.PARITY_SEED + 1)
        top = int(np.iinfo(manifest.dtype).max) + 1
        pixels = rng.integers(0, top, (config.calibration_windows,) + manifest.window_shape)
        return Windows(pixels.astype(manifest.dtype), None, "random (benchmark only)")
    where = dataset_dir or "the run's DataSet (not recorded in run_config.json or gone)"
    raise ActrecogError(f"{where}: no Train or Eval windows to calibrate the int8 files; "
                        f"pass --calibration DATASET_DIR or leave int8 out of --formats")


def detection_stream(dataset: Optional[manifest_lib.Manifest],
                     manifest: manifest_lib.Manifest, count: int
                     ) -> Tuple[Optional[np.ndarray], str]:
    """``count`` frames ``(count, D, D, C)`` stored dtype of the dataset's
    TestDetection sequences, one after the other (repeated from the first when
    they hold fewer), the last 100 being the first 100 again, or ``(None, why not)``."""
    if dataset is None or not dataset.source or count == 0:
        return None, "no dataset source recorded"
    if manifest.frames != hand_crop_lib.FULL_FRAMES:
        return None, f"{manifest.frames} frames: the drift stream reads whole frames only"
    folder = storage.join(dataset.source, labels_lib.DETECTION_SPLIT)
    if not storage.isdir(folder):
        return None, f"{folder}: not found"
    sequences: List[Tuple[str, List[int]]] = []
    for name in sorted(storage.listdir(folder)):
        path = storage.join(folder, name.rstrip("/"))
        if storage.isdir(path):
            indices = frames.list_frame_indices(path, manifest.modality)
            if indices:
                sequences.append((path, indices))
    if not sequences:
        return None, f"{folder}: no {manifest.modality} frames"
    order = [(path, index) for path, indices in sequences for index in indices]
    # The last span frames are the first span again: the same content at both ends,
    # so the two agreements differ only by what ~count frames of carried state did.
    span = min(config_lib.DRIFT_SPAN, count // 2)
    picked = [order[position % len(order)] for position in range(count - span)]
    picked += [order[position % len(order)] for position in range(span)]
    cache = {}
    stream = np.empty((count,) + manifest.window_shape[1:], manifest.dtype)
    for position, key in enumerate(picked):
        if key not in cache:
            cache[key] = frame_reader.read_resized_frame(key[0], manifest.modality, key[1],
                                                         manifest.image_dim)
        stream[position] = cache[key]
    repeated = "" if count - span <= len(order) else ", repeated"
    return stream, (f"{storage.absolute(folder)}: {len(sequences)} sequences, "
                    f"{len(order)} frames, one after the other{repeated}, the first "
                    f"{span} again as the last {span}")
