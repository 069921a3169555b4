"""Continuous detection in long sequences and video files (detect.py).

A trained window model labels every frame of a recording; runs of one action
become segments with a start, an end and a score.

Sources (SOURCE of detect.py):
    - one BII sequence folder (``<modality>_<i>.png`` frames);
    - a split folder: every sequence folder below it (``SRC/Test`` ->
      ``<subject>/<action>/``, ``SRC/TestDetection`` -> ``<name>/``,
      ``SRC/Train/<subject>`` -> ``<action>/``);
    - a video file, read with OpenCV's ``VideoCapture`` (colour frames; a camera
      index would take the same path through :class:`VideoFrames`).

Modes:
    offline  the probabilities of frame t are the mean over every window of L
             frames that covers t (the windows ending at t .. t+L-1);
    online   causal: frame t sees only frames <= t. A window model runs on the
             window ending at t, and frames 0 .. L-2, which have no full
             window, are output as no-action (probability 1); a streaming model
             (:class:`StreamStep`) runs one frame at a time with its state.
             With ``delay`` D > 0 (by default D = L-1) the label of frame t is
             given when frame t+D arrives, from the mean of the outputs at
             t .. t+D (a fixed-lag decision: every window that ends by t+D and
             holds t has a say); D = L-1 gives a window model the offline
             mode's probabilities, D frames later. The latency metric counts
             the D frames; D = 0 labels frame t as it arrives.

Each frame is decoded exactly once: PNG frames by the decoder threads of ``inference.frame_reader``
(:func:`coreLib.inference.frame_reader.iterate_batches` over one-frame windows), video frames by
one sequential ``VideoCapture`` pass; windows are cut from the decoded frames in
memory (the optional labelled video reads the frames again, for display). Both
modes run the same windows; they differ in which windows a frame's label takes.
LRCN's per-frame layers run once per frame and only its LSTM head once per
window (:class:`SharedFrameRunner`).

Ground truth: a sequence folder ``X`` is scored when ``X.xml`` lies beside it.
Train/Test label files give one action per sequence (the folder name);
TestDetection label files name the action in each item,
``<_><pos>120</pos><len>24</len><action>ui-swipe</action></_>``, and their items
must not overlap (read by :func:`coreLib.data.labels.parse_action_label_xml`).
Sequences without a label file are detected, not scored.

Outputs, all into ``out_dir`` (never into the dataset), written only after every
sequence has been detected, each file atomically::

    <name>.segments.json   {"name", "source", "mode", "num_frames", "segments":
                            [{start, end (inclusive), action, score}]}
    <name>.frames.csv      frame,label,score,<one column per class> (smoothed
                           probabilities)
    timeline_<name>.png    ground truth above prediction, one colour per class
    <name>.avi             with ``video``: each frame, its label and score, the
                           timeline strip beneath
    summary.json           settings, per-sequence and overall metrics, speed
"""

import collections
import concurrent.futures
import csv
import dataclasses
import io
import itertools
import json
import os
import re
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import frames, labels, manifest as manifest_lib, window_lists
from coreLib.detection import metrics as metrics_lib, segments as segments_lib
from coreLib.inference import (exported_model, forward as forward_lib, frame_reader,
                               model_loading)
from coreLib.preprocessing import records
from coreLib.errors import ActrecogError

tf = storage.tf

MODES = ("offline", "online")
DEFAULT_OUT_DIR = "detections"
RUN_CONFIG_NAME = manifest_lib.RUN_CONFIG_NAME
SUMMARY_NAME = "summary.json"
LABEL_SUFFIX = ".xml"
DETECTION_SPLIT = "TestDetection"
VIDEO_MODALITY = "color"
# Deep enough for SRC (SRC/Test/<subject>/<action>/); a bound keeps a wrong
# SOURCE (a home folder) from being walked whole.
MAX_SEARCH_DEPTH = 3
CSV_DIGITS = 6


# ----------------------------------------------------------------------------- config

@dataclass(frozen=True)
class DetectConfig:
    """What detect.py was asked to do.

    Attributes:
        model_name: ``ConvNet3D``, ``LRCN``, ``DUMMY`` or ``CausalMobileNet``.
        model_path: ``.weights.h5`` (train.py; its ``run_config.json`` beside it
            gives the window shape and classes), a full ``.keras`` model, or an
            export.py model (``.tflite``, SavedModel folder or OUT_DIR; its
            ``export.json`` gives them).
        source: a sequence folder, a split folder or a video file.
        out_dir: output folder (created; never inside the dataset).
        mode: ``offline`` or ``online``; None: online for a video, else offline.
        manifest_dir: a DataSet folder whose ``dataset.json`` gives the window
            shape, classes and modality (instead of ``run_config.json``).
        modality: frames to read when the run config does not say (default:
            colour for 3-channel models).
        smooth, min_frames, hysteresis: see
            :class:`coreLib.segments_lib.SmoothingConfig`.
        delay: online only: frames a label waits for (frame t is labelled when
            frame t+delay arrives; see :func:`delayed_probabilities`); None: L - 1
            online (every window holding frame t has a say), 0 offline.
        batch_size: windows (frames, for PNG decoding) per model call.
        workers: frame-decoding threads.
        video: also write a labelled video per sequence.
        fps: frames per second of the labelled videos.
        progress: a tqdm bar per sequence.
    """
    model_name: str
    model_path: str
    source: str
    out_dir: str = DEFAULT_OUT_DIR
    mode: Optional[str] = None
    manifest_dir: Optional[str] = None
    modality: Optional[str] = None
    smooth: int = 1
    min_frames: int = 1
    hysteresis: float = 0.0
    delay: Optional[int] = None
    batch_size: int = 32
    workers: int = 2
    video: bool = False
    fps: float = 15.0
    progress: bool = True

    def __post_init__(self):
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.batch_size < 1 or self.workers < 1:
            raise ValueError("batch_size and workers must be >= 1")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps!r}")
        if self.delay is not None and (not isinstance(self.delay, int) or self.delay < 0):
            raise ValueError(f"delay must be None or an integer >= 0, got {self.delay!r}")
        segments_lib.SmoothingConfig(self.smooth, self.min_frames, self.hysteresis)


@dataclass(frozen=True)
class SequenceSource:
    """One recording to run detection on.

    Attributes:
        name: output name (path below SOURCE joined by ``_``, or the file stem).
        path: the sequence folder or the video file.
        is_video: read through ``VideoCapture``.
        num_frames: frames (PNG: counted; video: OpenCV's estimate, may be 0).
        truth: ``(N,)`` int64 class per frame, or None without a label file.
        label_path: the label file, or None.
    """
    name: str
    path: str
    is_video: bool
    num_frames: int
    truth: Optional[np.ndarray] = field(default=None, compare=False)
    label_path: Optional[str] = None


@dataclass
class SequenceDetection:
    """What detection found in one sequence."""
    source: SequenceSource
    probabilities: np.ndarray        # (N, K) float32 model output per frame
    smoothed: np.ndarray             # (N, K) float32
    labels: np.ndarray               # (N,) int64
    scores: np.ndarray               # (N,) float32
    segments: List[dict]
    seconds: float
    decoded_frames: int
    metrics: Optional[dict] = None                          # None without truth
    counts: Optional[metrics_lib.SequenceCounts] = None     # what the overall figures sum


@dataclass(frozen=True)
class DetectResult:
    """What :func:`detect` produced."""
    sequences: Tuple[SequenceDetection, ...]
    summary: dict
    files: Tuple[str, ...]


# ----------------------------------------------------------------------------- model spec

def _window_manifest(classes, window_shape, modality: str, where: str) -> manifest_lib.Manifest:
    spec = frames.modality_spec(modality)
    seq_len, image_dim, _, channels = window_shape
    if channels != spec.channels:
        raise ActrecogError(f"{where}: the model takes {channels}-channel frames, "
                            f"{modality} frames have {spec.channels}")
    try:
        return manifest_lib.Manifest(tuple(classes), seq_len, image_dim, channels,
                                     modality, spec.dtype, False, {}, "")
    except ValueError as error:
        raise ActrecogError(f"{where}: {error}") from None


def resolve_model_spec(model_path: str, manifest_dir: Optional[str] = None,
                       modality: Optional[str] = None) -> manifest_lib.Manifest:
    """Window shape, classes and modality of a model, as a Manifest without splits.

    From ``manifest_dir/dataset.json`` when given (as score.py reads it), else
    from the ``export.json`` of an exported model (export.py), else from the
    ``run_config.json`` train.py wrote beside the weights; there the
    modality is its ``modality`` key, else ``modality``, else colour for a
    3-channel window.

    Raises:
        ActrecogError: no manifest and no run config, a run config without the
            needed keys, or a modality that does not fit the window's channels.
    """
    if manifest_dir:
        found = manifest_lib.load_manifest(manifest_dir)
        if modality and modality != found.modality:
            raise ActrecogError(f"--modality {modality}: the manifest's windows are "
                                f"{found.modality} frames")
        return found
    if exported_model.is_exported_path(model_path):
        info = exported_model.read_export_info(model_path)
        if modality and modality != info.modality:
            raise ActrecogError(f"--modality {modality}: {model_path} was exported for "
                                f"{info.modality} frames")
        return _window_manifest(info.classes, info.window_shape, info.modality, model_path)
    folder = os.path.dirname(model_path) or "."
    path = storage.join(folder, RUN_CONFIG_NAME)
    if not storage.exists(path):
        raise ActrecogError(f"{folder}: no {RUN_CONFIG_NAME} beside MODEL_PATH (train.py "
                            f"writes it); give the DataSet folder with --manifest")
    run_config = storage.read_json(path, "run configuration")
    shape, classes = run_config.get("window_shape"), run_config.get("classes")
    if (not isinstance(shape, list) or len(shape) != 4
            or not all(isinstance(value, int) and value > 0 for value in shape)
            or not isinstance(classes, list) or not classes
            or not all(isinstance(name, str) for name in classes)):
        raise ActrecogError(f"{path}: expected 'window_shape' [L, D, D, C] and a "
                            f"'classes' list")
    chosen = run_config.get("modality") or modality
    if chosen is None:
        if shape[3] != 3:
            raise ActrecogError(f"{path}: a {shape[3]}-channel model; say which frames "
                                f"it takes with --modality depth|confi or --manifest")
        chosen = VIDEO_MODALITY
    return _window_manifest(classes, shape, chosen, path)


# ----------------------------------------------------------------------------- ground truth

def _names_actions(data: bytes) -> bool:
    """Whether any item of a label file carries an ``<action>`` (False if unparsable:
    the label reader then reports the file)."""
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, ValueError, UnicodeError):
        return False
    return any(True for _ in root.iter(labels.ACTION_TAG))


def truth_from_labels(path: str, sequence_dir: str, num_frames: int,
                      classes: Tuple[str, ...]) -> np.ndarray:
    """Per-frame classes from a label file.

    TestDetection files (a sequence whose parent folder is ``TestDetection``, or
    any file whose items carry ``<action>``) are read with
    :func:`coreLib.data.labels.parse_action_label_xml` (each item its action, no two
    items overlapping); other files take the sequence folder's name as the
    action of every item (:func:`coreLib.data.labels.parse_label_xml`).

    Returns:
        ``(N,)`` int64 class indices, no-action outside every item.

    Raises:
        ActrecogError: an item without an action where one is needed (naming the
            expected form), an action the model does not know, overlapping
            items, or an item past the last frame.
    """
    data = storage.read_bytes(path)
    actions = classes[:-1]
    parent = os.path.basename(os.path.dirname(os.path.normpath(sequence_dir)))
    if parent == DETECTION_SPLIT or _names_actions(data):
        items = labels.parse_action_label_xml(data, actions, path)
        intervals = tuple(labels.Interval(item.pos, item.len) for item in items)
        names = [item.action for item in items]
    else:
        intervals = labels.parse_label_xml(data, path)
        folder_action = os.path.basename(os.path.normpath(sequence_dir))
        if folder_action not in actions:
            raise ActrecogError(f"{path}: the sequence folder names action "
                                f"{folder_action!r}, which the model does not know "
                                f"(classes: {', '.join(actions)})")
        names = [folder_action] * len(intervals)
    labels.check_intervals(intervals, num_frames, path)
    truth = np.full(num_frames, len(classes) - 1, np.int64)
    for interval, name in zip(intervals, names):
        truth[interval.pos:interval.end] = classes.index(name)
    return truth


# ----------------------------------------------------------------------------- sources

def _has_frames(folder: str, modality: str) -> bool:
    pattern = re.compile(rf"^{re.escape(modality)}_\d+\.png$")
    return any(pattern.match(name) for name in storage.listdir(folder))


def _sequence_folders(root: str, modality: str) -> List[str]:
    """Folders holding frames at most :data:`MAX_SEARCH_DEPTH` levels below root."""
    found, level = [], [root]
    for _ in range(MAX_SEARCH_DEPTH + 1):
        below = []
        for folder in level:
            if _has_frames(folder, modality):
                found.append(folder)
                continue
            below += [storage.join(folder, name) for name in storage.listdir(folder)
                      if storage.isdir(storage.join(folder, name))]
        level = below
    return sorted(found)


def open_video(target) -> "Any":
    """An opened ``cv2.VideoCapture`` of a file name or a camera index.

    Raises:
        ActrecogError: it cannot be opened.
    """
    import cv2
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        capture.release()
        raise ActrecogError(f"{target}: cannot be opened as a video")
    return capture


def discover_sources(source: str, manifest: manifest_lib.Manifest) -> List[SequenceSource]:
    """Every recording under SOURCE, with its ground truth where a label file is.

    Raises:
        ActrecogError: SOURCE missing, a folder without any sequence, a video for a
            model of another modality or one that cannot be opened, a gap in a
            sequence's frames, a sequence shorter than the window, or a bad label
            file (see :func:`truth_from_labels`).
    """
    if not storage.exists(source):
        raise ActrecogError(f"{source}: SOURCE not found")
    if not storage.isdir(source):
        if manifest.modality != VIDEO_MODALITY:
            raise ActrecogError(f"{source}: a video gives colour frames, the model takes "
                                f"{manifest.modality} windows")
        if storage.is_remote(source):
            raise ActrecogError(f"{source}: video files are read from local paths only")
        capture = open_video(source)
        import cv2
        estimate = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        capture.release()
        stem = os.path.splitext(os.path.basename(source))[0]
        return [SequenceSource(stem, source, True, estimate)]
    root = source.rstrip("/") or source
    folders = _sequence_folders(root, manifest.modality)
    if not folders:
        raise ActrecogError(f"{source}: no sequence folders with "
                            f"{manifest.modality}_<i>.png frames (and not a video file)")
    sources = []
    for folder in folders:
        if folder == root:
            name = os.path.basename(os.path.normpath(root))
        else:
            name = "_".join(folder[len(root):].strip("/").split("/"))
        num_frames = frames.count_frames(folder, manifest.modality)
        if num_frames < manifest.seq_len:
            raise ActrecogError(f"{folder}: {num_frames} frames, fewer than the model's "
                                f"window of {manifest.seq_len}")
        label_path = folder.rstrip("/") + LABEL_SUFFIX
        truth = None
        if storage.exists(label_path):
            truth = truth_from_labels(label_path, folder, num_frames, manifest.classes)
        else:
            label_path = None
        sources.append(SequenceSource(name, folder, False, num_frames, truth, label_path))
    return sources


# ----------------------------------------------------------------------------- frames

def png_frame_chunks(sequence: SequenceSource, manifest: manifest_lib.Manifest,
                     chunk_frames: int, workers: int) -> Iterator[np.ndarray]:
    """The frames of a PNG sequence in order, each decoded once.

    ``inference.frame_reader``'s threaded reader, over windows of one frame: ``workers`` threads
    decode and resize a chunk ahead of the caller.

    Yields:
        ``(T, D, D, C)`` arrays of the manifest's dtype, ``T <= chunk_frames``.

    Raises:
        ActrecogError: a frame that cannot be read or decoded.
    """
    single = dataclasses.replace(manifest, seq_len=1)
    windows = [window_lists.ListedWindow(sequence.path, index, index, 0)
               for index in range(sequence.num_frames)]
    for _, pixels, _, _ in frame_reader.iterate_batches(windows, single, chunk_frames, workers):
        yield pixels[:, 0]


class VideoFrames:
    """Frames of a ``VideoCapture`` (file or camera), RGB resized to the model's side.

    Args:
        target: a video file name or a camera index.
        image_dim: side D of the model's frames.

    Attributes:
        decoded_frames: frames read so far.
    """

    def __init__(self, target, image_dim: int):
        self.target, self.image_dim, self.decoded_frames = target, image_dim, 0

    def chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """Yields ``(T, D, D, 3)`` uint8 RGB chunks until the capture ends."""
        import cv2
        capture = open_video(self.target)
        try:
            while True:
                chunk = []
                while len(chunk) < chunk_frames:
                    ok, image = capture.read()
                    if not ok:
                        break
                    self.decoded_frames += 1
                    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                    chunk.append(frames.resize_frame(rgb, self.image_dim))
                if chunk:
                    yield np.stack(chunk)
                if len(chunk) < chunk_frames:
                    return
        finally:
            capture.release()


def prefetch(iterator: Iterator, depth: int = 1) -> Iterator:
    """Runs ``iterator`` one step ahead in a thread (decoding beside the model)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sentinel = object()
        queue = collections.deque(pool.submit(next, iterator, sentinel)
                                  for _ in range(depth))
        while queue:
            item = queue.popleft().result()
            if item is sentinel:
                return
            queue.append(pool.submit(next, iterator, sentinel))
            yield item


# ----------------------------------------------------------------------------- predictors

class StreamStep:
    """The interface of a streaming model: one frame and a state in, probabilities
    and the next state out.

    Subclasses implement :meth:`initial_state` and :meth:`step`; the online runner
    (:func:`stream_probabilities`) calls ``step`` once per frame, in order, with
    the state it returned for the frame before.
    """

    def initial_state(self) -> Any:
        """The state before frame 0."""
        raise NotImplementedError

    # True when step takes frames as stored (an exported graph scales them itself).
    stored_pixels = False

    def step(self, frame: np.ndarray, state: Any) -> Tuple[np.ndarray, Any]:
        """One frame.

        Args:
            frame: ``(1, D, D, C)`` float32, scaled as the models' input.
            state: from :meth:`initial_state` or the previous call.

        Returns:
            ``(probabilities (1, K) float32, next state)``.
        """
        raise NotImplementedError


class WindowStreamStep(StreamStep):
    """A window model behind the stream interface: the state holds the last L
    frames; until L frames have been seen the output is no-action.

    It gives the same probabilities as the window runner's online mode, one model
    call per frame (batch 1); streaming models proper carry a compact state
    instead of the frames.
    """

    def __init__(self, model, manifest: manifest_lib.Manifest):
        self.manifest = manifest
        self.call = tf.function(lambda window: model(window, training=False),
                                input_signature=[tf.TensorSpec(
                                    (1,) + tuple(manifest.window_shape), tf.float32)])
        self.no_action = np.zeros((1, manifest.num_classes), np.float32)
        self.no_action[0, -1] = 1.0

    def initial_state(self):
        return (np.zeros((1,) + tuple(self.manifest.window_shape), np.float32), 0)

    def step(self, frame, state):
        window, seen = state
        window = np.concatenate([window[:, 1:], frame[:, np.newaxis]], axis=1)
        seen += 1
        if seen < self.manifest.seq_len:
            return self.no_action, (window, seen)
        return self.call(window).numpy(), (window, seen)


class StatefulRunnerStep(StreamStep):
    """A runner that keeps its own state behind the stream interface.

    The runner needs ``reset()`` (back to the state before frame 0), ``state``
    (the current state), ``set_state(state)`` and ``step(frames (1, D, D, C)
    float32) -> (1, K)`` probabilities, as ``coreLib.models.streaming.StreamRunner``
    has them on the stream branch. The state handed back is the runner's own, so
    in a run front to back ``set_state`` is only called when a caller passes in
    another state than the last one returned.

    Args:
        runner: the stateful runner (batch size 1).
    """

    def __init__(self, runner):
        self.runner = runner

    def initial_state(self):
        self.runner.reset()
        return self.runner.state

    def step(self, frame, state):
        if state is not self.runner.state:
            self.runner.set_state(state)
        probabilities = self.runner.step(frame)
        return probabilities, self.runner.state


class ExportedStreamStep(StreamStep):
    """The ``stream_step`` of an exported model (SavedModel or
    ``<MODEL_NAME>_stream.tflite``): its states are arrays handed in and out.

    The exported graph scales the pixels itself, so it takes frames in the
    stored dtype (``stored_pixels``), not scaled ones.
    """

    stored_pixels = True

    def __init__(self, model: "exported_model.ExportedModel"):
        self.model = model

    def initial_state(self):
        return self.model.initial_state(1)

    def step(self, frame, state):
        return self.model.stream_step(frame, state)


def _causal_mobilenet_step(model, manifest: manifest_lib.Manifest) -> StreamStep:
    from coreLib.models import streaming
    return StatefulRunnerStep(streaming.StreamRunner(model))


# Streaming models by name: model name -> builder(model, manifest) -> StreamStep.
# Online they run frame by frame through it; offline, and for every other model,
# the windows run through a WindowRunner.
STREAM_STEP_BUILDERS: Dict[str, Callable[..., StreamStep]] = {
    "CausalMobileNet": _causal_mobilenet_step,   # coreLib.models.streaming
}


def _scaled(pixels: np.ndarray, dtype: str) -> np.ndarray:
    return records.scale_pixels(pixels, dtype).numpy()


class WindowRunner:
    """How a window model labels windows: stored pixels in, probabilities out.

    The plain runner cuts windows of stored pixels and calls the model on them
    (:func:`coreLib.inference.forward.make_forward`: scaling, then the traced model).
    :class:`SharedFrameRunner` instead turns each frame into features once and
    cuts the windows from the features.

    Args:
        forward: ``forward(pixels (B, L, D, D, C) stored dtype, rotations (B,),
            flips (B,)) -> (B, K)`` tensor, from :func:`coreLib.inference.forward.make_forward`.
    """

    def __init__(self, forward):
        self.forward = forward

    def frame_items(self, chunk: np.ndarray) -> np.ndarray:
        """What a window is cut from, per frame: here the stored pixels themselves."""
        return chunk

    def windows(self, items: np.ndarray) -> np.ndarray:
        """``(B, L, ...)`` windows of frame items -> ``(B, K)`` float32."""
        unrotated = np.zeros(len(items), np.int32)
        return self.forward(items, unrotated, unrotated).numpy()


class SharedFrameRunner(WindowRunner):
    """LRCN with each frame's convolutional features computed once.

    LRCN's convolutions, poolings, ReLUs and (at inference: a per-channel affine
    map) BatchNorms act on each frame alone; only its LSTMs mix the frames of a
    window. So the per-frame part runs once per frame and the LSTM head once per
    window on the stored features: L times less convolution work than running
    every window, with the same layers and weights (probabilities agree to float
    rounding, ~1e-7).

    Args:
        model: a built LRCN (layer names of :func:`coreLib.models.build_lrcn`).
        manifest: window shape and dtype.
    """

    def __init__(self, model, manifest: manifest_lib.Manifest):
        import keras
        from coreLib import models
        self.dtype = manifest.dtype
        seq_len, image_dim, _, channels = manifest.window_shape
        # Frames enter as a batch of one-frame sequences: the layers are the
        # model's own (TimeDistributed and 5-D BatchNorm as built).
        frames_in = keras.Input((1, image_dim, image_dim, channels))
        x = frames_in
        for block in range(1, len(models.LRCN_CONV_FILTERS) + 1):
            for part in ("conv", "pool", "relu", "norm"):
                x = model.get_layer(f"block{block}_{part}")(x)
        x = model.get_layer("flatten")(x)
        feature_size = int(x.shape[-1])
        features_in = keras.Input((seq_len, feature_size))
        y = features_in
        for index in range(1, len(models.LRCN_LSTM_UNITS) + 1):
            y = model.get_layer(f"lstm{index}")(y)
        for index in range(1, len(models.LRCN_DENSE_UNITS) + 1):
            y = model.get_layer(f"fc{index}_dropout")(model.get_layer(f"fc{index}")(y))
        y = model.get_layer(models.OUTPUT_LAYER_NAME)(y)
        frame_model, head_model = keras.Model(frames_in, x), keras.Model(features_in, y)
        self.frame_call = tf.function(
            lambda batch: frame_model(batch, training=False),
            input_signature=[tf.TensorSpec((None, 1, image_dim, image_dim, channels),
                                           tf.float32)])
        self.head_call = tf.function(
            lambda batch: head_model(batch, training=False),
            input_signature=[tf.TensorSpec((None, seq_len, feature_size), tf.float32)])

    def frame_items(self, chunk):
        scaled = records.scale_pixels(chunk[:, np.newaxis], self.dtype)
        return self.frame_call(scaled).numpy()[:, 0]

    def windows(self, items):
        return self.head_call(items).numpy()


def make_window_runner(model_name: str, model, manifest: manifest_lib.Manifest) -> WindowRunner:
    """LRCN shares its per-frame features between windows; other models (whose
    first layers mix frames) run every window whole."""
    from coreLib import models
    if model_name == models.LRCN_NAME:
        return SharedFrameRunner(model, manifest)
    return WindowRunner(forward_lib.make_forward(model, manifest))


def window_probabilities(chunks: Iterable[np.ndarray], manifest: manifest_lib.Manifest,
                         runner: WindowRunner, batch_size: int, bar=None) -> np.ndarray:
    """Probabilities of every window of L frames, by its last frame.

    Args:
        chunks: the sequence's frames in order, ``(T, D, D, C)`` stored dtype.
        manifest: window shape and classes.
        runner: see :class:`WindowRunner`.
        batch_size: windows per model call.
        bar: a tqdm bar to advance by frames.

    Returns:
        ``(N, K)`` float32; row t is the window of frames ``t-L+1 .. t`` (rows
        ``0 .. L-2`` stay 0: no full window ends there).
    """
    seq_len = manifest.seq_len
    tail = None     # the last L-1 frame items of the chunks before
    rows: List[np.ndarray] = []
    seen = 0
    for chunk in chunks:
        items = runner.frame_items(chunk)
        buffer = items if tail is None else np.concatenate([tail, items])
        # The sequence's first L-1 frames end no full window.
        without_window = max(0, min(len(chunk), seq_len - 1 - seen))
        if without_window:
            rows.append(np.zeros((without_window, manifest.num_classes), np.float32))
        count = len(chunk) - without_window
        if count > 0:
            views = np.lib.stride_tricks.sliding_window_view(buffer, seq_len, axis=0)
            windows = np.moveaxis(views, -1, 1)   # (count, L, ...), no copy yet
            for begin in range(0, count, batch_size):
                rows.append(runner.windows(
                    np.ascontiguousarray(windows[begin:begin + batch_size])))
        seen += len(chunk)
        tail = buffer[max(0, len(buffer) - (seq_len - 1)):]
        if bar is not None:
            bar.update(len(chunk))
    if not rows:
        return np.zeros((0, manifest.num_classes), np.float32)
    return np.concatenate(rows).astype(np.float32)


def frame_probabilities(window_rows: np.ndarray, seq_len: int, mode: str) -> np.ndarray:
    """Per-frame probabilities from the windows' (rows by last frame).

    Args:
        window_rows: ``(N, K)`` from :func:`window_probabilities`.
        seq_len: L.
        mode: ``online``: row t itself (frames before L-1: no-action, probability
            1); ``offline``: the mean of rows ``t .. t+L-1`` that exist (every
            window covering frame t).

    Returns:
        ``(N, K)`` float32.
    """
    count = len(window_rows)
    if mode == "online":
        result = window_rows.copy()
        result[:seq_len - 1] = 0.0
        result[:seq_len - 1, -1] = 1.0
        return result.astype(np.float32)
    frames_index = np.arange(count)
    first = np.maximum(frames_index, seq_len - 1) - (seq_len - 1)
    last = np.minimum(frames_index + seq_len - 1, count - 1) - (seq_len - 1)
    return segments_lib.range_means(window_rows[seq_len - 1:], first, last)


def resolve_delay(delay: Optional[int], seq_len: int, mode: str) -> int:
    """The fixed lag in frames: ``delay``, or by default L - 1 online and 0 offline.

    Raises:
        ActrecogError: a lag asked for in offline mode.
    """
    if mode != "online":
        if delay:
            raise ActrecogError(f"--delay {delay}: a fixed lag is for --mode online; "
                                f"offline already sees the frames after each one")
        return 0
    return seq_len - 1 if delay is None else delay


def delayed_probabilities(probabilities: np.ndarray, delay: int) -> np.ndarray:
    """Fixed-lag online probabilities: frame t from the causal outputs at t .. t+D.

    Row t is the mean of rows ``t .. min(t+D, N-1)`` of the causal output, so it
    is known once frame t+D has arrived (at the end of a recording, once the
    last frame has). Each of those rows was computed from frames <= its own
    index; none from later frames.

    Args:
        probabilities: ``(N, K)`` causal per-frame output.
        delay: D >= 0 (0 returns the input unchanged).

    Returns:
        ``(N, K)`` float32.
    """
    if delay == 0 or len(probabilities) == 0:
        return probabilities
    first = np.arange(len(probabilities))
    return segments_lib.range_means(probabilities, first,
                                    np.minimum(first + delay, len(probabilities) - 1))


def stream_probabilities(chunks: Iterable[np.ndarray], stream: StreamStep, dtype: str,
                         bar=None) -> np.ndarray:
    """A streaming model run one frame at a time, its state carried across frames.

    Args:
        chunks: frames in order, ``(T, D, D, C)`` stored dtype.
        stream: the model's :class:`StreamStep` (frames scaled as the models'
            input, or as stored when its ``stored_pixels`` is True).
        dtype: the stored pixel dtype (for the models' input scaling).
        bar: a tqdm bar to advance by frames.

    Returns:
        ``(N, K)`` float32, row t computed from frames ``0 .. t`` only.
    """
    state = stream.initial_state()
    rows = []
    for chunk in chunks:
        scaled = chunk if stream.stored_pixels else _scaled(chunk, dtype)
        for frame in scaled:
            probabilities, state = stream.step(frame[np.newaxis], state)
            rows.append(np.asarray(probabilities, np.float32).reshape(-1))
        if bar is not None:
            bar.update(len(chunk))
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


# ----------------------------------------------------------------------------- outputs

def frames_csv(detection: SequenceDetection, classes: Tuple[str, ...]) -> bytes:
    """``frame,label,score,<class>...`` per frame (smoothed probabilities)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["frame", "label", "score", *classes])
    formatted = np.char.mod(f"%.{CSV_DIGITS}f", detection.smoothed)
    scores = np.char.mod(f"%.{CSV_DIGITS}f", detection.scores)
    for index, label in enumerate(detection.labels):
        writer.writerow([index, classes[label], scores[index], *formatted[index]])
    return buffer.getvalue().encode("utf-8")


def class_colours(classes: Tuple[str, ...]) -> List[Tuple[float, float, float]]:
    """One RGB colour (0-1) per class; no-action (last) light grey."""
    import matplotlib
    palette = matplotlib.colormaps["tab20"].colors
    # tab20 comes in dark/light pairs of one hue: the ten dark ones first, so
    # neighbouring classes never share a hue below 11 actions.
    palette = palette[0::2] + palette[1::2]
    colours = [tuple(palette[index % len(palette)][:3]) for index in range(len(classes) - 1)]
    return colours + [(0.9, 0.9, 0.9)]


def render_timeline_png(truth: Optional[np.ndarray], prediction: np.ndarray,
                        classes: Tuple[str, ...], title: str) -> bytes:
    """Ground truth above prediction, one colour per class, frames along x."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    colours = class_colours(classes)
    rows = ([("ground truth", truth)] if truth is not None else []) + [("prediction",
                                                                      prediction)]
    figure = Figure(figsize=(12, 1.2 + 0.6 * len(rows)))
    axes = figure.add_subplot()
    shown = set()
    for row, (_, values) in enumerate(rows):
        y = len(rows) - 1 - row
        for run in metrics_lib.label_runs(values):
            axes.broken_barh([(run.start, run.length)], (y + 0.1, 0.8),
                             facecolors=colours[run.label])
            shown.add(run.label)
    axes.set_yticks([len(rows) - 1 - row + 0.5 for row in range(len(rows))],
                    labels=[name for name, _ in rows])
    axes.set_xlim(0, len(prediction))
    axes.set_ylim(0, len(rows))
    axes.set_xlabel("frame")
    axes.set_title(title)
    handles = [Patch(facecolor=colours[index], label=classes[index]) for index in sorted(shown)]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
                frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


TIMELINE_STRIP_HEIGHT = 24
CURSOR_COLOUR = (255, 255, 255)   # BGR white
LABEL_TEXT_COLOUR = (0, 255, 0)   # BGR green
TRUTH_TEXT_COLOUR = (0, 255, 255)  # BGR yellow


@dataclass
class PendingVideo:
    """A labelled video written under a temporary name, renamed by :meth:`commit`."""
    temp_path: str
    final_path: str

    def commit(self) -> str:
        os.replace(self.temp_path, self.final_path)
        return self.final_path

    def discard(self) -> None:
        if os.path.exists(self.temp_path):
            os.remove(self.temp_path)


def timeline_strip(truth: Optional[np.ndarray], prediction: np.ndarray,
                   classes: Tuple[str, ...], width: int) -> np.ndarray:
    """``(TIMELINE_STRIP_HEIGHT, width, 3)`` uint8 BGR: truth (top half, when
    known) and prediction (bottom half) as class colours along x."""
    import cv2
    palette = (np.array(class_colours(classes))[:, ::-1] * 255).astype(np.uint8)
    rows = [truth if truth is not None else prediction, prediction]
    strip = np.stack([palette[row] for row in rows])            # (2, N, 3)
    return cv2.resize(strip, (width, TIMELINE_STRIP_HEIGHT), interpolation=cv2.INTER_NEAREST)


def _display_frames(sequence: SequenceSource, modality: str) -> Iterator[np.ndarray]:
    """``(H, W, 3)`` uint8 BGR frames for the video, read again from the source."""
    from coreLib.evaluation import video
    if sequence.is_video:
        capture = open_video(sequence.path)
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield image
        finally:
            capture.release()
    for index in range(sequence.num_frames):
        yield video.read_display_frame(frames.frame_path(sequence.path, modality, index),
                                       modality)


def render_labelled_video(detection: SequenceDetection, manifest: manifest_lib.Manifest,
                          final_path: str, fps: float, progress: bool) -> PendingVideo:
    """Writes ``<name>.avi`` under a temporary name: each frame with its label and
    score, the truth when known, and the timeline strip with a cursor beneath.

    Raises:
        ActrecogError: the video cannot be written, or a frame cannot be read.
    """
    import cv2
    from tqdm import tqdm
    from coreLib.evaluation import video

    if storage.is_remote(final_path):
        raise ActrecogError(f"{final_path}: --video writes local files only")
    classes, sequence = manifest.classes, detection.source
    count = len(detection.labels)
    frames_iterator = _display_frames(sequence, manifest.modality)
    first = next(frames_iterator)
    width, height = first.shape[1] + first.shape[1] % 2, first.shape[0] + first.shape[0] % 2
    longest = max(classes, key=len)
    layout = video.band_layout(width, f"truth: {longest}  00000 1.00")
    band_height = 2 * layout.line_height + layout.margin
    total_height = height + band_height + TIMELINE_STRIP_HEIGHT
    total_height += total_height % 2
    strip = timeline_strip(sequence.truth, detection.labels, classes, width)
    pending = PendingVideo(storage.temporary_name(final_path) + video.VIDEO_SUFFIX, final_path)
    writer = video.open_mjpg_writer(pending.temp_path, fps, (width, total_height), final_path)
    try:
        with tqdm(total=count, unit="frame", desc=f"video {sequence.name}",
                  disable=not progress) as bar:
            for index, image in enumerate(itertools.chain([first], frames_iterator)):
                if index >= count:
                    break
                canvas = np.zeros((total_height, width, 3), np.uint8)
                canvas[:height] = video.letterbox(image, width, height)
                label = classes[detection.labels[index]]
                lines = [(f"{index}: {label} {detection.scores[index]:.2f}",
                          LABEL_TEXT_COLOUR)]
                if sequence.truth is not None:
                    lines.append((f"truth: {classes[sequence.truth[index]]}",
                                  TRUTH_TEXT_COLOUR))
                for line, (text, colour) in enumerate(lines, start=1):
                    cv2.putText(canvas, text, (layout.margin, height + line * layout.line_height
                                               - layout.margin // 2),
                                video.FONT, layout.font_scale, colour, layout.thickness,
                                cv2.LINE_AA)
                top = height + band_height
                canvas[top:top + TIMELINE_STRIP_HEIGHT] = strip
                cursor = min(width - 1, int(index * width / max(count, 1)))
                canvas[top:top + TIMELINE_STRIP_HEIGHT, cursor] = CURSOR_COLOUR
                ok, encoded = cv2.imencode(".jpg", canvas,
                                           [cv2.IMWRITE_JPEG_QUALITY, video.JPEG_QUALITY])
                if not ok:
                    raise ActrecogError(f"{final_path}: JPEG encoding failed")
                writer.write(encoded.reshape(1, -1))
                bar.update(1)
        writer.release()
    except BaseException:
        writer.release()
        pending.discard()
        raise
    return pending


def _json_bytes(value) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _round_metrics(metrics: dict) -> dict:
    return {key: (round(value, 4) if isinstance(value, float) else value)
            for key, value in metrics.items()}


# ----------------------------------------------------------------------------- driver

def _check_out_dir(out_dir: str, source: str) -> None:
    if storage.is_remote(out_dir) or storage.is_remote(source) or not storage.isdir(source):
        return
    out, root = os.path.realpath(out_dir), os.path.realpath(source)
    if out == root or out.startswith(root + os.sep):
        raise ActrecogError(f"--out {out_dir}: lies inside the dataset SOURCE {source}; "
                            f"choose a folder outside it")


def load_exported_runner(config: DetectConfig, manifest: manifest_lib.Manifest, mode: str):
    """:func:`load_runner` for an export.py model (SavedModel folder, OUT_DIR or
    ``.tflite`` file): its stream step online when it has one, else its window
    model.

    Raises:
        ActrecogError: an exported model of another name, classes or window, or
            a stream-only file asked for offline mode.
    """
    model = exported_model.load_exported(config.model_path)
    exported_model.check_matches(model, config.model_name, manifest.classes,
                                 manifest.window_shape, manifest.dtype)
    if mode == "online" and model.has_stream_step:
        return model, "stream", ExportedStreamStep(model)
    if not model.has_window_model:
        raise ActrecogError(f"{config.model_path}: holds only the stream step; offline "
                            f"mode needs the window model ({config.model_name}.tflite or "
                            f"the SavedModel), or use --mode online")
    return model, "window", WindowRunner(exported_model.make_scoring_forward(model, False))


def load_runner(config: DetectConfig, manifest: manifest_lib.Manifest, mode: str):
    """The model and how it runs: ``(model, "stream", StreamStep)`` for a
    streaming model online, else ``(model, "window", WindowRunner)``; exported
    models through :func:`load_exported_runner`."""
    if exported_model.is_exported_path(config.model_path):
        return load_exported_runner(config, manifest, mode)
    model = model_loading.load_model(config.model_name, config.model_path, manifest)
    builder = STREAM_STEP_BUILDERS.get(config.model_name)
    if builder is not None and mode == "online":
        return model, "stream", builder(model, manifest)
    return model, "window", make_window_runner(config.model_name, model, manifest)


def detect_sequence(sequence: SequenceSource, manifest: manifest_lib.Manifest, kind: str,
                    runner, mode: str, config: DetectConfig) -> SequenceDetection:
    """Runs detection on one recording (no file written).

    Args:
        sequence: the recording.
        manifest: window shape, dtype, classes.
        kind, runner: from :func:`load_runner`.
        mode: ``offline`` or ``online``.
        config: smoothing, batch size, workers, progress.

    Raises:
        ActrecogError: a frame that cannot be read or decoded, a video shorter
            than the window.
    """
    from tqdm import tqdm

    began = time.perf_counter()
    video_reader = VideoFrames(sequence.path, manifest.image_dim) if sequence.is_video else None
    decode_count = [0]

    def counted(chunks):
        for chunk in chunks:
            decode_count[0] += len(chunk)
            yield chunk

    if video_reader:
        chunks = video_reader.chunks(config.batch_size)
    else:
        chunks = png_frame_chunks(sequence, manifest, config.batch_size, config.workers)
    chunks = prefetch(counted(chunks))
    bar = tqdm(total=sequence.num_frames or None, unit="frame", desc=sequence.name,
               disable=not config.progress, leave=True)
    try:
        if kind == "stream":
            probabilities = stream_probabilities(chunks, runner, manifest.dtype, bar)
        else:
            rows = window_probabilities(chunks, manifest, runner, config.batch_size, bar)
            if len(rows) < manifest.seq_len:
                raise ActrecogError(f"{sequence.path}: {len(rows)} frames, fewer than the "
                                    f"model's window of {manifest.seq_len}")
            probabilities = frame_probabilities(rows, manifest.seq_len, mode)
        delay = resolve_delay(config.delay, manifest.seq_len, mode)
        probabilities = delayed_probabilities(probabilities, delay)
    except BaseException:
        bar.leave = False   # the error line replaces the bar
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - began
    background = manifest.num_classes - 1
    smoothing = segments_lib.SmoothingConfig(config.smooth, config.min_frames,
                                                   config.hysteresis, mode == "online")
    smoothed, frame_labels, scores = segments_lib.label_frames(
        probabilities, smoothing, background)
    segments = segments_lib.segments_of(frame_labels, smoothed, manifest.classes,
                                              background)
    metrics = counts = None
    if sequence.truth is not None:
        counts = metrics_lib.sequence_counts(sequence.truth, frame_labels, background, delay)
        metrics = metrics_lib.summarise([counts], mode == "online")
    return SequenceDetection(sequence, probabilities, smoothed, frame_labels, scores,
                             segments, seconds, decode_count[0], metrics, counts)


def _summary(config: DetectConfig, manifest: manifest_lib.Manifest, mode: str, kind: str,
             detections: list) -> dict:
    """``summary.json`` (without ``seconds``): the run, overall and per-sequence metrics."""
    scored = [d.counts for d in detections if d.counts is not None]
    overall = metrics_lib.summarise(scored, mode == "online") if scored else None
    total_frames = sum(len(d.labels) for d in detections)
    detect_seconds = sum(d.seconds for d in detections)
    summary = {
        "model_name": config.model_name,
        "model_path": storage.absolute(config.model_path),
        "source": storage.absolute(config.source),
        "mode": mode,
        "runner": kind,
        "smooth": config.smooth, "min_frames": config.min_frames,
        "hysteresis": config.hysteresis, "delay": config.delay,
        "classes": list(manifest.classes),
        "window_shape": list(manifest.window_shape),
        "modality": manifest.modality,
        "num_sequences": len(detections),
        "num_frames": total_frames,
        "decoded_frames": sum(d.decoded_frames for d in detections),
        "detect_seconds": round(detect_seconds, 3),
        "frames_per_second": round(total_frames / detect_seconds, 2) if detect_seconds else None,
        "overall": _round_metrics(overall) if overall else None,
        "sequences": {
            d.source.name: {"source": storage.absolute(d.source.path),
                            "label_file": d.source.label_path,
                            "num_frames": len(d.labels),
                            "num_segments": len(d.segments),
                            "seconds": round(d.seconds, 3),
                            "metrics": _round_metrics(d.metrics) if d.metrics else None}
            for d in detections},
    }
    return summary


def _rendered_outputs(config: DetectConfig, manifest: manifest_lib.Manifest, mode: str,
                      detections: list) -> List[Tuple[str, Any]]:
    """``(file name, bytes)`` of every per-sequence output, rendered before any is
    written (a failure while rendering leaves no output behind)."""
    outputs: List[Tuple[str, Any]] = []
    for d in detections:
        name = d.source.name
        segments_doc = {"name": name, "source": storage.absolute(d.source.path),
                        "mode": mode, "num_frames": len(d.labels),
                        "classes": list(manifest.classes), "segments": d.segments}
        outputs.append((f"{name}.segments.json", _json_bytes(segments_doc)))
        outputs.append((f"{name}.frames.csv", frames_csv(d, manifest.classes)))
        outputs.append((f"timeline_{name}.png", render_timeline_png(
            d.source.truth, d.labels, manifest.classes,
            f"{name}: {config.model_name}, {mode}"
            + (f", labels {config.delay} frames late" if config.delay else ""))))
    return outputs


def detect(config: DetectConfig) -> DetectResult:
    """Detects actions in every recording of SOURCE and writes the outputs.

    Every input is checked before the model runs, and every output is rendered
    before the first is written, so bad input leaves no output of this run.

    Raises:
        ActrecogError: any bad input (see :func:`discover_sources`,
            :func:`coreLib.inference.model_loading.load_model`, :func:`detect_sequence`).
    """
    began = time.perf_counter()
    from coreLib import models
    models.get_model_builder(config.model_name)
    manifest = resolve_model_spec(config.model_path, config.manifest_dir, config.modality)
    _check_out_dir(config.out_dir, config.source)
    sources = discover_sources(config.source, manifest)
    mode = config.mode or ("online" if sources[0].is_video else "offline")
    config = dataclasses.replace(config, delay=resolve_delay(config.delay,
                                                             manifest.seq_len, mode))
    _, kind, runner = load_runner(config, manifest, mode)
    storage.check_writable(config.out_dir)

    detections = []
    for sequence in sources:
        detection = detect_sequence(sequence, manifest, kind, runner, mode, config)
        if sequence.is_video:   # now the real frame count is known
            sequence = dataclasses.replace(sequence, num_frames=len(detection.labels))
            detection.source = sequence
        detections.append(detection)

    summary = _summary(config, manifest, mode, kind, detections)
    outputs = _rendered_outputs(config, manifest, mode, detections)
    storage.remove_temporaries(config.out_dir)   # left by a killed earlier run
    videos: List[PendingVideo] = []
    try:
        if config.video:
            for d in detections:
                videos.append(render_labelled_video(
                    d, manifest, storage.join(config.out_dir, f"{d.source.name}.avi"),
                    config.fps, config.progress))
        summary["seconds"] = round(time.perf_counter() - began, 3)
        outputs.append((SUMMARY_NAME, _json_bytes(summary)))
    except BaseException:
        for video in videos:
            video.discard()
        raise
    files = [video.commit() for video in videos]
    for name, data in outputs:
        path = storage.join(config.out_dir, name)
        storage.write_bytes_atomic(path, data)
        files.append(path)
    return DetectResult(tuple(detections), summary, tuple(files))


# ----------------------------------------------------------------------------- report

def _figure(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_lines(result: DetectResult) -> List[str]:
    """The table detect.py prints: one row per sequence, the overall row, and a
    last line with frame accuracy and F1@25."""
    summary = result.summary
    online = summary["mode"] == "online"
    keys = ["frame_accuracy", "edit", "f1@10", "f1@25", "f1@50"]
    headers = ["frames", "segments", "acc %", "edit", "F1@10", "F1@25", "F1@50"]
    if online:
        keys += ["latency_frames", "false_starts_per_1000_frames"]
        headers += ["latency", "false/1k"]
    names = list(summary["sequences"]) + ["overall"]
    width = max(len(name) for name in names + ["sequence"])
    lines = ["  ".join([f"{'sequence':<{width}}"] + [f"{h:>8}" for h in headers])]

    def row(name, frame_count, segment_count, metrics):
        cells = [f"{frame_count:>8}", f"{segment_count:>8}"]
        cells += [f"{_figure(metrics.get(key) if metrics else None):>8}" for key in keys]
        return "  ".join([f"{name:<{width}}"] + cells)

    for name, entry in summary["sequences"].items():
        lines.append(row(name, entry["num_frames"], entry["num_segments"], entry["metrics"]))
    total_segments = sum(entry["num_segments"] for entry in summary["sequences"].values())
    lines.append(row("overall", summary["num_frames"], total_segments, summary["overall"]))
    lines.append(f"{summary['num_frames']} frames in {summary['detect_seconds']:.2f} s "
                 f"({_figure(summary['frames_per_second'], 1)} frames/s, {summary['mode']}"
                 + (f", delay {summary['delay']}" if online else "") + "); "
                 f"outputs in {os.path.dirname(result.files[-1])}")
    overall = summary["overall"]
    if overall:
        lines.append(f"frame accuracy {overall['frame_accuracy']:.2f} %, "
                     f"F1@25 {overall['f1@25']:.2f}")
    else:
        lines.append("frame accuracy -, F1@25 - (no label files: detected, not scored)")
    return lines
