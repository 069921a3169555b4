"""Scoring a trained model on the Test windows (score.py).

The Test JSON lists windows ``{"path": sequence folder, "start", "stop" (inclusive),
"class", "rotation", "flip"}``. Up to ``seq_len`` windows share a frame, and the 2019
scorer decoded every frame again for every window and called ``model.predict`` once
per window. Here each needed frame is decoded and resized once by decoder threads
that run a batch ahead of the model (:mod:`coreLib.inference.frame_reader`), and
each batch is scaled and goes through one traced (or, for large sets,
XLA-compiled) model call (:mod:`coreLib.inference.forward`).

Pixels are scaled exactly as the training input pipeline scales the stored records:
``uint8 / 255`` or ``min(uint16, 4095) / 4095`` as float32, after the same rotation/flip
(:func:`coreLib.preprocessing.augment.transform_windows`) when an entry asks for one.

Results go to ``<json dir>/Results/``, named after MODEL_NAME for Keras weights and
after the file scored for an exported model (:func:`results_stem`):
    video_sec_<name>.json    [{"path", "truth", "prediction", "score"}], JSON order
    metrics_<name>.json      accuracy, F1s, per-class figures, confusion matrix
    confusion_<name>.png     row-normalised confusion matrix
Every input is checked before the model runs and every file is rendered before the
first is written, so bad input leaves no Results file behind.
"""

import io
import os
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from coreLib import models, storage
from coreLib.data import manifest as manifest_lib, window_lists
from coreLib.data.window_lists import ListedWindow
from coreLib.inference import exported_model, forward, frame_reader, model_loading

RESULTS_FOLDER = "Results"


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
        progress: report progress (a bar on a terminal, else plain lines).
        jit_compile: compile the model call with XLA; None decides by the number
            of windows (see :data:`coreLib.inference.forward.JIT_MIN_WINDOWS`).
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


def load_test_windows(json_path: str, manifest: manifest_lib.Manifest) -> List[ListedWindow]:
    """Reads and checks the Test JSON against the manifest's seq_len and classes.

    Raises:
        ActrecogError: see :func:`coreLib.data.window_lists.parse_entries`.
    """
    return window_lists.read_window_list(json_path, manifest.seq_len, manifest.classes)


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


def results_stem(model_name: str, model_path: str) -> str:
    """What the Results files are named after: MODEL_NAME for Keras weights (the
    1.0.4 names), the file scored for an exported model (``CausalMobileNet.tflite``,
    ``<MODEL_NAME>_<folder>`` for a SavedModel or OUT_DIR), so that scoring an
    export never overwrites the Keras run's Results."""
    if not exported_model.is_exported_path(model_path):
        return model_name
    base = os.path.basename(model_path.rstrip("/"))
    return base if model_path.endswith(exported_model.TFLITE_SUFFIX) else f"{model_name}_{base}"


def results_names(stem: str) -> Tuple[str, str, str]:
    """File names of the three Results files (``stem`` from :func:`results_stem`)."""
    return (f"video_sec_{stem}.json", f"metrics_{stem}.json", f"confusion_{stem}.png")


def video_sec_entries(windows: Sequence[ListedWindow], probabilities: np.ndarray,
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
    models.get_model_builder(config.model_name)
    # Classes in the model's own order (its run_config.json), matched by name.
    manifest = model_loading.manifest_for_model(config.dataset_dir, config.model_path)
    windows = load_test_windows(config.json_path, manifest)
    frame_reader.check_frames_exist(windows, manifest.modality)
    # An exported model (SavedModel / .tflite from export.py) brings its own forward.
    exported = exported_model.scoring_forward(
        config.model_path, config.model_name, manifest,
        augmented=any(window.rotation or window.flip for window in windows))
    model = (exported["model"] if exported
             else model_loading.load_model(config.model_name, config.model_path, manifest))
    storage.check_writable(config.results_dir)

    boxes = {} if manifest.hand_crop_config() is not None else None
    probabilities = forward.predict_windows(model, windows, manifest, config.batch_size,
                                    config.workers, config.progress,
                                    forward=exported and exported["forward"],
                                    jit_compile=config.jit_compile, boxes=boxes)
    truth = np.array([window.label for window in windows], np.int64)
    prediction = probabilities.argmax(axis=1).astype(np.int64)
    metrics, report = compute_metrics(truth, prediction, manifest.classes)
    metrics.update({"model_name": config.model_name,
                    "weights_file": storage.absolute(config.model_path),
                    "test_json": storage.absolute(config.json_path),
                    "seconds": round(time.perf_counter() - began, 3)})
    if boxes is not None:
        # Hand-centred frames: the frames read (each sequence from its first) and
        # those where the tracker found no hand (their boxes held).
        metrics.update({"frames_read": len(boxes), "frames_without_hand":
                        sum(not box.found for box in boxes.values())})

    # Render everything first: a failure here leaves no Results file.
    names = results_names(results_stem(config.model_name, config.model_path))
    contents = [
        storage.json_bytes(video_sec_entries(windows, probabilities, manifest.classes)),
        storage.json_bytes(metrics),
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


def summary_lines(result: ScoreResult) -> List[str]:
    """What score.py prints: the original's accuracy line, the table, macro F1."""
    metrics = result.metrics
    no_hand = ([f"Hand-centred frames: {metrics['frames_without_hand']} of "
                f"{metrics['frames_read']} frames read without a hand (box held)"]
               if "frames_without_hand" in metrics else [])
    return ([f"Test data Prediction Accuracy [F1 accuracy]: {metrics['micro_f1'] * 100}",
             result.report.rstrip("\n"),
             f"Macro F1: {metrics['macro_f1'] * 100:.2f}"] + no_hand
            + [f"Results: {', '.join(result.files)}"])
