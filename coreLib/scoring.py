"""Scoring a trained model on the Test windows (score.py).

The Test JSON lists windows ``{"path": sequence folder, "start", "stop" (inclusive),
"class", "rotation", "flip"}``. Up to ``seq_len`` windows share a frame, and the 2019
scorer decoded every frame again for every window and called ``model.predict`` once
per window. Here the windows are grouped by sequence, each needed frame is decoded
and resized once by decoder threads that run a batch ahead of the model, the
windows are gathered from the frames in memory, and each batch is scaled and
goes through one traced (or, for large sets, XLA-compiled) model call.

Pixels are scaled exactly as the training input pipeline scales the stored records:
``uint8 / 255`` or ``min(uint16, 4095) / 4095`` as float32, after the same rotation/flip
(:func:`coreLib.augment.transform_windows`) when an entry asks for one.

Results go to ``<json dir>/Results/``:
    video_sec_<model>.json   [{"path", "truth", "prediction", "score"}], JSON order
    metrics_<model>.json     accuracy, F1s, per-class figures, confusion matrix
    confusion_<model>.png    row-normalised confusion matrix
Every input is checked before the model runs and every file is rendered before the
first is written, so bad input leaves no Results file behind.
"""

import collections
import concurrent.futures
import io
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from coreLib import augment, exported_model, frames, manifest as manifest_lib, pipeline
from coreLib import storage
from coreLib.errors import ActrecogError

tf = storage.tf

RESULTS_FOLDER = "Results"
WEIGHTS_SUFFIXES = (".weights.h5", ".h5")
FULL_MODEL_SUFFIX = ".keras"
OUTPUT_LAYER_NAME = "probabilities"
REQUIRED_KEYS = ("path", "start", "stop", "class")
# The Results JSON names a window by its first colour frame, as the 2019 tool did
# (videogen.py and other consumers read that frame).
RESULT_FRAME_MODALITY = "color"
# XLA makes LRCN's batch call ~20% cheaper on CPU (5.6 -> 4.5 ms per window at
# batch 64, 2 cores) but compiling takes ~3x as long as tracing (about 3 s more
# on 2 quiet cores, measured 10 s more under load alongside a 3.5-8.5 ms saving
# per window); from about this many windows on it pays. Probabilities agree
# with the traced call to ~2e-8.
JIT_MIN_WINDOWS = 2500


@dataclass(frozen=True)
class ScoreConfig:
    """What score.py was asked to do.

    Attributes:
        model_name: ``ConvNet3D``, ``LRCN`` or ``DUMMY``.
        model_path: ``.weights.h5`` (from train.py) or a full ``.keras`` model.
        json_path: the Test JSON list of windows.
        manifest_dir: folder holding ``dataset.json`` (default: the JSON's folder).
        batch_size: windows per model call.
        workers: frame-decoding threads.
        progress: show a tqdm progress bar.
        jit_compile: compile the model call with XLA; None decides by the number
            of windows (see :data:`JIT_MIN_WINDOWS`).
    """
    model_name: str
    model_path: str
    json_path: str
    manifest_dir: Optional[str] = None
    batch_size: int = 64
    workers: int = 2
    progress: bool = True
    jit_compile: Optional[bool] = None

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    @property
    def dataset_dir(self) -> str:
        return self.manifest_dir or os.path.dirname(self.json_path)

    @property
    def results_dir(self) -> str:
        return storage.join(os.path.dirname(self.json_path), RESULTS_FOLDER)


@dataclass(frozen=True)
class TestWindow:
    """One window of the Test JSON.

    Attributes:
        path: sequence folder (local path or URI).
        start, stop: first and last frame index (inclusive).
        label: class index into the manifest's classes.
        rotation, flip: augmentation to apply (0 for the Test split).
    """
    path: str
    start: int
    stop: int
    label: int
    rotation: int = 0
    flip: int = 0

    @property
    def first_frame_path(self) -> str:
        return frames.frame_path(self.path, RESULT_FRAME_MODALITY, self.start)


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score` produced.

    Attributes:
        probabilities: ``(N, K)`` float32 model outputs, in JSON order.
        truth, prediction: ``(N,)`` int64 class indices.
        metrics: the content of ``metrics_<model>.json``.
        report: scikit-learn's per-class table.
        files: Results files written.
    """
    probabilities: np.ndarray
    truth: np.ndarray
    prediction: np.ndarray
    metrics: dict
    report: str
    files: Tuple[str, ...]


# ----------------------------------------------------------------------------- input

def _integer(entry: dict, key: str, where: str) -> int:
    value = entry.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ActrecogError(f"{where}: {key!r} must be an integer, got {value!r}")
    return value


def load_test_windows(json_path: str, manifest: manifest_lib.Manifest) -> List[TestWindow]:
    """Reads and checks the Test JSON.

    Args:
        json_path: the JSON list of windows.
        manifest: gives the class list and seq_len.

    Returns:
        The windows, in the JSON's order.

    Raises:
        ActrecogError: missing file, not a non-empty list, an entry without
            path/start/stop/class, a window of the wrong length, or a class the
            manifest does not know (each naming the entry).
    """
    entries = storage.read_json(json_path, "Test JSON")
    if not isinstance(entries, list):
        raise ActrecogError(f"{json_path}: expected a JSON list of windows, "
                            f"got {type(entries).__name__}")
    if not entries:
        raise ActrecogError(f"{json_path}: the list of windows is empty")
    windows = []
    for number, entry in enumerate(entries):
        where = f"{json_path}: entry {number}"
        if not isinstance(entry, dict):
            raise ActrecogError(f"{where}: expected an object, got {type(entry).__name__}")
        missing = [key for key in REQUIRED_KEYS if key not in entry]
        if missing:
            raise ActrecogError(f"{where}: missing {', '.join(missing)}")
        if not isinstance(entry["path"], str) or not entry["path"]:
            raise ActrecogError(f"{where}: 'path' must be a folder name")
        start, stop = _integer(entry, "start", where), _integer(entry, "stop", where)
        if start < 0 or stop - start + 1 != manifest.seq_len:
            raise ActrecogError(f"{where}: window {start}..{stop} is not "
                                f"{manifest.seq_len} frames (the manifest's seq_len)")
        name = entry["class"]
        if name not in manifest.classes:
            raise ActrecogError(f"{where}: class {name!r} is not in the manifest's "
                                f"classes")
        windows.append(TestWindow(entry["path"], start, stop, manifest.classes.index(name),
                                  _integer(entry, "rotation", where),
                                  _integer(entry, "flip", where)))
    return windows


def group_by_sequence(windows: Sequence[TestWindow]) -> Dict[str, List[int]]:
    """Window numbers per sequence folder, sequences in order of first appearance,
    windows of a sequence by start frame (so frames are read front to back)."""
    groups: Dict[str, List[int]] = collections.OrderedDict()
    for number, window in enumerate(windows):
        groups.setdefault(window.path, []).append(number)
    for numbers in groups.values():
        numbers.sort(key=lambda number: (windows[number].start, number))
    return groups


def needed_frames(windows: Sequence[TestWindow], numbers: Sequence[int]) -> List[int]:
    """Sorted frame indices that the given windows of one sequence cover."""
    needed = set()
    for number in numbers:
        needed.update(range(windows[number].start, windows[number].stop + 1))
    return sorted(needed)


def check_frames_exist(windows: Sequence[TestWindow], modality: str) -> None:
    """Proves every frame a window covers exists, listing each folder once.

    Raises:
        ActrecogError: naming the first missing frame (or missing folder).
    """
    for path, numbers in group_by_sequence(windows).items():
        if not storage.isdir(path):
            raise ActrecogError(f"{path}: sequence folder not found")
        present = set(frames.list_frame_indices(path, modality))
        for index in needed_frames(windows, numbers):
            if index not in present:
                raise ActrecogError(f"{frames.frame_path(path, modality, index)}: "
                                    f"frame missing")


# ----------------------------------------------------------------------------- model

def _h5_layer_shapes(path: str) -> Tuple[Optional[str], Dict[str, List[tuple]]]:
    """Model name and per-layer variable shapes stored in a Keras 3 weights file."""
    import h5py  # a Keras dependency; only needed here

    shapes: Dict[str, List[tuple]] = {}
    try:
        with h5py.File(path, "r") as handle:
            if "layers" not in handle:
                return None, {}
            saved_name = handle["vars"].attrs.get("name") if "vars" in handle else None
            for group in handle["layers"].values():
                if "vars" not in group:
                    continue
                layer_name = group["vars"].attrs.get("name", "")
                found: List[tuple] = []

                def collect(_, item, found=found):
                    if isinstance(item, h5py.Dataset):
                        found.append(tuple(item.shape))
                group.visititems(collect)
                shapes[str(layer_name)] = sorted(found)
    except OSError as error:
        raise ActrecogError(f"{path}: not a Keras weights file ({error})") from None
    return (str(saved_name) if saved_name is not None else None), shapes


def _model_layer_shapes(model) -> Dict[str, List[tuple]]:
    return {layer.name: sorted(tuple(weight.shape) for weight in layer.weights)
            for layer in model.layers}


def check_weights_match(model, weights_path: str, local_path: str, model_name: str,
                        manifest: manifest_lib.Manifest) -> None:
    """Compares a weights file's layers and shapes with the model before loading.

    Args:
        model: the model built from the manifest's window shape and classes.
        weights_path: the name to report.
        local_path: a local copy of the file.
        model_name: the requested model name.
        manifest: gives the window shape and class count.

    Raises:
        ActrecogError: weights of another model, for another class count, or for
            another input shape (each said so, with the layer that differs).
    """
    saved_name, saved = _h5_layer_shapes(local_path)
    if saved_name and saved_name != model_name:
        raise ActrecogError(f"{weights_path}: weights of a {saved_name} model, not "
                            f"{model_name}")
    if not saved:
        return  # not a Keras 3 layout; load_weights decides
    expected = _model_layer_shapes(model)
    if set(saved) != set(expected):
        unknown = sorted(set(saved) ^ set(expected))[:3]
        raise ActrecogError(f"{weights_path}: weights of another model than "
                            f"{model_name} (layers {', '.join(unknown)} differ)")
    # The output layer's bias has one value per class.
    biases = [shape[0] for shape in saved.get(OUTPUT_LAYER_NAME, []) if len(shape) == 1]
    if biases and biases[0] != manifest.num_classes:
        saved_classes = biases[0]
        raise ActrecogError(f"{weights_path}: weights for {saved_classes} classes, the "
                            f"manifest has {manifest.num_classes}")
    for layer_name, shapes in expected.items():
        if saved[layer_name] != shapes:
            raise ActrecogError(
                f"{weights_path}: weights for another input shape than the manifest's "
                f"{manifest.window_shape} (layer {layer_name} holds "
                f"{saved[layer_name]}, expected {shapes})")


def load_model(model_name: str, model_path: str, manifest: manifest_lib.Manifest):
    """Builds ``model_name`` for the manifest's windows and loads ``model_path``.

    Args:
        model_name: ``ConvNet3D``, ``LRCN`` or ``DUMMY``.
        model_path: ``.weights.h5`` (train.py) or full ``.keras`` model, local or URI.
        manifest: window shape ``(L, D, D, C)`` and class count.

    Returns:
        A ``keras.Model``: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32.

    Raises:
        ActrecogError: unknown model name, missing file, weights that do not fit.
    """
    from coreLib import models  # imports keras

    import keras

    if model_path.endswith(FULL_MODEL_SUFFIX):
        kind = "model file"
    elif model_path.endswith(WEIGHTS_SUFFIXES):
        kind = "weights file"
    else:
        raise ActrecogError(f"{model_path}: MODEL_PATH must end in .weights.h5 or .keras, "
                            f"or be an export.py model (.tflite, SavedModel folder)")
    models.get_model_builder(model_name)  # unknown name before any file work
    if not storage.exists(model_path):
        raise ActrecogError(f"{model_path}: {kind} not found")
    with tempfile.TemporaryDirectory() as local_dir:
        local_path = model_path
        if storage.is_remote(model_path):
            local_path = os.path.join(local_dir, os.path.basename(model_path))
            tf.io.gfile.copy(model_path, local_path, overwrite=True)
        with warnings.catch_warnings():
            # Keras warns per layer before raising; the raise is reported instead.
            warnings.simplefilter("ignore")
            if kind == "model file":
                return _load_full_model(keras, model_name, model_path, local_path, manifest)
            model = models.build_model(model_name, manifest.seq_len, manifest.image_dim,
                                       manifest.channels, manifest.num_classes)
            check_weights_match(model, model_path, local_path, model_name, manifest)
            try:
                model.load_weights(local_path)
            except (ValueError, OSError, KeyError) as error:
                first_line = str(error).strip().splitlines()[0] if str(error) else ""
                raise ActrecogError(f"{model_path}: weights do not fit {model_name} at "
                                    f"{manifest.window_shape} with {manifest.num_classes} "
                                    f"classes ({first_line})") from None
    return model


def _load_full_model(keras, model_name: str, model_path: str, local_path: str,
                     manifest: manifest_lib.Manifest):
    try:
        model = keras.saving.load_model(local_path, compile=False)
    except Exception as error:  # Keras raises many types for a bad archive
        first_line = str(error).strip().splitlines()[0] if str(error) else type(error).__name__
        raise ActrecogError(
            f"{model_path}: not a loadable Keras model ({first_line})") from None
    if model.name != model_name:
        raise ActrecogError(f"{model_path}: holds a {model.name} model, not {model_name}")
    input_shape = tuple(model.input_shape[1:])
    if input_shape != manifest.window_shape:
        raise ActrecogError(f"{model_path}: model input shape {input_shape} differs from "
                            f"the manifest's {manifest.window_shape}")
    if model.output_shape[-1] != manifest.num_classes:
        raise ActrecogError(f"{model_path}: model has {model.output_shape[-1]} classes, the "
                            f"manifest has {manifest.num_classes}")
    return model


# ----------------------------------------------------------------------------- windows

def _read_resized(path: str, modality: str, index: int, image_dim: int) -> np.ndarray:
    """One frame decoded and resized to ``(D, D, C)`` of the modality's dtype."""
    frame_file = frames.frame_path(path, modality, index)
    data = frames.read_frame_bytes(frame_file)
    return frames.resize_frame(frames.decode_frame(data, modality, frame_file), image_dim)


@dataclass(frozen=True)
class ReadPlan:
    """In which order windows are scored and frames decoded.

    Attributes:
        order: window numbers, sequences in order of first appearance, each
            sequence's windows by start frame (so frames are read front to back).
        frame_keys: ``(sequence path, frame index)`` of every needed frame, once,
            in order of first use.
        first_use, last_use: per frame key, the first and last position in
            ``order`` of a window that covers it.
    """
    order: Tuple[int, ...]
    frame_keys: Tuple[Tuple[str, int], ...]
    first_use: Dict[Tuple[str, int], int]
    last_use: Dict[Tuple[str, int], int]


def make_read_plan(windows: Sequence[TestWindow]) -> ReadPlan:
    """See :class:`ReadPlan`."""
    order = tuple(number for numbers in group_by_sequence(windows).values()
                  for number in numbers)
    first_use: Dict[Tuple[str, int], int] = {}
    last_use: Dict[Tuple[str, int], int] = {}
    for position, number in enumerate(order):
        window = windows[number]
        for index in range(window.start, window.stop + 1):
            key = (window.path, index)
            first_use.setdefault(key, position)
            last_use[key] = position
    return ReadPlan(order, tuple(first_use), first_use, last_use)


def iterate_batches(windows: Sequence[TestWindow], manifest: manifest_lib.Manifest,
                    batch_size: int, workers: int = 2
                    ) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yields batches of windows' stored pixels, decoding each frame once.

    ``workers`` threads decode the needed frames in reading order (OpenCV releases
    the GIL), up to the frames of the batch after the one being yielded, across
    sequence boundaries; so while the caller runs the model on one batch, the
    next one is being decoded. A frame is dropped after the last window that
    covers it, so memory holds about two batches' frames.

    Args:
        windows: the Test windows.
        manifest: modality, image_dim, seq_len and dtype.
        batch_size: windows per batch (the last one may be smaller).
        workers: decoding threads.

    Yields:
        ``(numbers, pixels, rotations, flips)``: ``(B,)`` int64 window positions in
        the JSON, ``(B, L, D, D, C)`` array of the manifest's dtype, ``(B,)`` int32
        rotations and ``(B,)`` int32 flips.

    Raises:
        ActrecogError: a frame that cannot be read or decoded.
    """
    plan = make_read_plan(windows)
    order = plan.order
    dtype = np.dtype(manifest.dtype)
    pending: Dict[Tuple[str, int], concurrent.futures.Future] = {}
    decoded: Dict[Tuple[str, int], np.ndarray] = {}
    submitted = 0
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        for begin in range(0, len(order), batch_size):
            end = min(begin + batch_size, len(order))
            # Everything the next batch needs goes to the decoders now.
            horizon = min(end + batch_size, len(order))
            while (submitted < len(plan.frame_keys)
                   and plan.first_use[plan.frame_keys[submitted]] < horizon):
                key = plan.frame_keys[submitted]
                pending[key] = pool.submit(_read_resized, key[0], manifest.modality,
                                           key[1], manifest.image_dim)
                submitted += 1
            numbers = np.array(order[begin:end], np.int64)
            pixels = np.empty((end - begin,) + manifest.window_shape, dtype)
            for row, number in enumerate(numbers):
                window = windows[number]
                for offset in range(manifest.seq_len):
                    key = (window.path, window.start + offset)
                    frame = decoded.get(key)
                    if frame is None:
                        frame = decoded[key] = pending.pop(key).result()
                    pixels[row, offset] = frame
            for key in [key for key in decoded if plan.last_use[key] < end]:
                del decoded[key]
            rotations = np.array([windows[n].rotation for n in numbers], np.int32)
            flips = np.array([windows[n].flip for n in numbers], np.int32)
            yield numbers, pixels, rotations, flips
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def iterate_windows(windows: Sequence[TestWindow], manifest: manifest_lib.Manifest,
                    workers: int = 2) -> Iterator[Tuple[int, np.ndarray, int, int]]:
    """Yields every window's stored pixels, one at a time (see :func:`iterate_batches`).

    Yields:
        ``(number, pixels, rotation, flip)``: the window's position in the JSON,
        ``(L, D, D, C)`` array of the manifest's dtype, and its augmentation.
    """
    for numbers, pixels, rotations, flips in iterate_batches(
            windows, manifest, max(1, manifest.seq_len), workers):
        for row, number in enumerate(numbers):
            yield int(number), pixels[row], int(rotations[row]), int(flips[row])


def scale_pixels(pixels, dtype: str):
    """Stored pixels to model input: the training pipeline's own scaling.

    Args:
        pixels: ``(..., C)`` uint8 or uint16 tensor.
        dtype: the manifest's pixel dtype.

    Returns:
        float32 tensor in [0, 1]: ``min(x, S) / S``, S = 255 (uint8) or 4095
        (uint16; ``frames.MODEL_INPUT_SCALE``).
    """
    return pipeline.scale_pixels(pixels, dtype)


def make_forward(model, manifest: manifest_lib.Manifest, augmented: bool = False,
                 jit_compile: bool = False):
    """The model's inference call on stored pixels.

    A batch crosses from Python to TensorFlow once, as compact uint8/uint16. The
    pixels are scaled by eager ops between the traced rotation/flip and the traced
    model: inside a traced graph the division is rewritten and probabilities
    move by ~1e-8, and the Results must not change with the speed-up. The model
    is traced once for every batch size; with ``jit_compile`` XLA compiles it once
    per batch size (:func:`predict_windows` pads the last batch, so once).

    Args:
        model: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32.
        manifest: window shape and pixel dtype.
        augmented: apply each window's rotation and flip first.
        jit_compile: compile the model with XLA (~2e-8 from the traced call).

    Returns:
        ``forward(pixels (B, L, D, D, C) stored dtype, rotations (B,) int32,
        flips (B,) int32) -> (B, K) float32 tensor``.
    """
    pixel_spec = tf.TensorSpec((None,) + tuple(manifest.window_shape),
                               tf.dtypes.as_dtype(manifest.dtype))
    vector_spec = tf.TensorSpec((None,), tf.int32)
    run_model = tf.function(
        lambda batch: model(batch, training=False), jit_compile=jit_compile or None,
        input_signature=[tf.TensorSpec((None,) + tuple(manifest.window_shape),
                                       tf.float32)])
    transform = tf.function(augment.transform_windows,
                            input_signature=[pixel_spec, vector_spec, vector_spec])

    def forward(pixels, rotations, flips):
        if augmented:
            pixels = transform(pixels, rotations, flips)
        return run_model(scale_pixels(pixels, manifest.dtype))

    return forward


def predict_windows(model, windows: Sequence[TestWindow], manifest: manifest_lib.Manifest,
                    batch_size: int = 64, workers: int = 2, progress: bool = True,
                    forward=None, jit_compile: Optional[bool] = None) -> np.ndarray:
    """Class probabilities of every window.

    The model runs in this thread on one batch while the decoder threads prepare
    the next (no tf.data: its generator thread and per-element hand-overs cost
    more than they overlapped on two cores).

    Args:
        model: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32.
        windows: the Test windows.
        manifest: window shape and pixel dtype.
        batch_size: windows per model call.
        workers: decoding threads.
        progress: show a tqdm bar over windows.
        forward: from :func:`make_forward` (to reuse a traced call across runs);
            it must apply rotations/flips if any window has one.
        jit_compile: for the forward made here, and whether to pad the last
            batch to ``batch_size`` (one XLA compilation); None: from
            :data:`JIT_MIN_WINDOWS` windows on.

    Returns:
        ``(N, K)`` float32 probabilities, row i for ``windows[i]``.

    Raises:
        ActrecogError: a frame that cannot be read or decoded.
    """
    from tqdm import tqdm

    if jit_compile is None:
        jit_compile = len(windows) >= JIT_MIN_WINDOWS
    augmented = any(window.rotation or window.flip for window in windows)
    forward = forward or make_forward(model, manifest, augmented, jit_compile)
    probabilities = np.zeros((len(windows), manifest.num_classes), np.float32)
    seen = np.zeros(len(windows), bool)
    with tqdm(total=len(windows), unit="window", disable=not progress,
              desc="scoring") as bar:
        for numbers, pixels, rotations, flips in iterate_batches(windows, manifest,
                                                                 batch_size, workers):
            count = len(numbers)
            if jit_compile and count < batch_size and len(windows) > batch_size:
                # Repeating the last window keeps the compiled shape; rows are
                # independent, so the padding does not touch the others.
                pad = batch_size - count
                pixels = np.concatenate([pixels, np.repeat(pixels[-1:], pad, axis=0)])
                rotations = np.concatenate([rotations, np.repeat(rotations[-1:], pad)])
                flips = np.concatenate([flips, np.repeat(flips[-1:], pad)])
            probabilities[numbers] = forward(pixels, rotations, flips).numpy()[:count]
            seen[numbers] = True
            bar.update(len(numbers))
    if not seen.all():
        raise ActrecogError(f"{int((~seen).sum())} windows were not scored")
    return probabilities


# ----------------------------------------------------------------------------- metrics

def compute_metrics(truth: np.ndarray, prediction: np.ndarray,
                    classes: Sequence[str]) -> Tuple[dict, str]:
    """Accuracy, F1 scores, per-class figures and the confusion matrix.

    Args:
        truth, prediction: ``(N,)`` int class indices.
        classes: the manifest's class names (index order).

    Returns:
        ``(metrics, report)``: a JSON-ready dict (fractions in [0, 1]) and
        scikit-learn's classification report over all classes.
    """
    from sklearn import metrics as sk

    labels = list(range(len(classes)))
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        truth, prediction, labels=labels, zero_division=0)
    report = sk.classification_report(truth, prediction, labels=labels,
                                      target_names=list(classes), digits=4,
                                      zero_division=0)
    matrix = sk.confusion_matrix(truth, prediction, labels=labels)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]),
               "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(classes)}
    value = {
        "accuracy": float(sk.accuracy_score(truth, prediction)),
        "micro_f1": float(sk.f1_score(truth, prediction, labels=labels, average="micro",
                                      zero_division=0)),
        "macro_f1": float(sk.f1_score(truth, prediction, labels=labels, average="macro",
                                      zero_division=0)),
        "classes": list(classes),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "num_windows": int(len(truth)),
    }
    return value, report


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows of classes absent from the truth stay 0)."""
    matrix = np.asarray(matrix, np.float64)
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)


def render_confusion_png(matrix: np.ndarray, classes: Sequence[str], title: str) -> bytes:
    """PNG bytes of the row-normalised confusion matrix with class names."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    normalised = row_normalised(matrix)
    size = max(4.0, 0.55 * len(classes) + 2.5)
    figure = Figure(figsize=(size + 1.0, size))
    axes = figure.add_subplot()
    image = axes.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = range(len(classes))
    axes.set_xticks(ticks, labels=list(classes), rotation=90)
    axes.set_yticks(ticks, labels=list(classes))
    axes.set_xlabel("prediction")
    axes.set_ylabel("ground truth")
    axes.set_title(title)
    for row in ticks:
        for column in ticks:
            if matrix[row][column]:
                value = normalised[row, column]
                axes.text(column, row, f"{value:.2f}", ha="center", va="center",
                          fontsize=7, color="white" if value > 0.5 else "black")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def results_names(model_name: str) -> Tuple[str, str, str]:
    """File names of the three Results files."""
    return (f"video_sec_{model_name}.json", f"metrics_{model_name}.json",
            f"confusion_{model_name}.png")


def video_sec_entries(windows: Sequence[TestWindow], probabilities: np.ndarray,
                      classes: Sequence[str]) -> List[dict]:
    """The original's Results list, plus the softmax score of the prediction."""
    prediction = probabilities.argmax(axis=1)
    return [{"path": window.first_frame_path, "truth": classes[window.label],
             "prediction": classes[int(prediction[number])],
             "score": float(probabilities[number, prediction[number]])}
            for number, window in enumerate(windows)]


# ----------------------------------------------------------------------------- driver

def score(config: ScoreConfig) -> ScoreResult:
    """Scores a model on a Test JSON and writes the Results files.

    Args:
        config: see :class:`ScoreConfig`.

    Returns:
        The probabilities, labels, metrics and files written.

    Raises:
        ActrecogError: any bad input; then no Results file is written.
    """
    began = time.perf_counter()
    from coreLib import models
    models.get_model_builder(config.model_name)
    manifest = manifest_lib.load_manifest(config.dataset_dir)
    windows = load_test_windows(config.json_path, manifest)
    check_frames_exist(windows, manifest.modality)
    # An exported model (SavedModel / .tflite from export.py) brings its own forward.
    exported = exported_model.scoring_forward(
        config.model_path, config.model_name, manifest,
        augmented=any(window.rotation or window.flip for window in windows))
    model = (exported["model"] if exported
             else load_model(config.model_name, config.model_path, manifest))
    storage.check_writable(config.results_dir)

    probabilities = predict_windows(model, windows, manifest, config.batch_size,
                                    config.workers, config.progress,
                                    forward=exported and exported["forward"],
                                    jit_compile=config.jit_compile)
    truth = np.array([window.label for window in windows], np.int64)
    prediction = probabilities.argmax(axis=1).astype(np.int64)
    metrics, report = compute_metrics(truth, prediction, manifest.classes)
    metrics.update({"model_name": config.model_name,
                    "weights_file": storage.absolute(config.model_path),
                    "test_json": storage.absolute(config.json_path),
                    "seconds": round(time.perf_counter() - began, 3)})

    # Render everything first: a failure here leaves no Results file.
    names = results_names(config.model_name)
    contents = [
        _json_bytes(video_sec_entries(windows, probabilities, manifest.classes)),
        _json_bytes(metrics),
        render_confusion_png(np.array(metrics["confusion_matrix"]), manifest.classes,
                             f"{config.model_name}: row-normalised confusion matrix"),
    ]
    storage.remove_temporaries(config.results_dir)
    files = []
    for name, data in zip(names, contents):
        path = storage.join(config.results_dir, name)
        storage.write_bytes_atomic(path, data)
        files.append(path)
    return ScoreResult(probabilities, truth, prediction, metrics, report, tuple(files))


def _json_bytes(value) -> bytes:
    import json
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode("utf-8")


def summary_lines(result: ScoreResult) -> List[str]:
    """What score.py prints: the original's accuracy line, the table, macro F1."""
    metrics = result.metrics
    return [f"Test data Prediction Accuracy [F1 accuracy]: {metrics['micro_f1'] * 100}",
            result.report.rstrip("\n"),
            f"Macro F1: {metrics['macro_f1'] * 100:.2f}",
            f"Results: {', '.join(result.files)}"]
