"""detect.py's driver: every recording of SOURCE through the model, then the outputs.

A trained window model labels every frame of a recording; runs of one action
become segments with a start, an end and a score. The pieces: the recordings
and their frames (:mod:`.sources`), the model's runners
(:mod:`coreLib.inference.runners`), per-frame probabilities and the fixed lag
(:mod:`.fusion`), labels and segments (:mod:`.segments`; a recording's all at once
in :mod:`.labelling`), scores (:mod:`.metrics`), files and pictures
(:mod:`.outputs`, :mod:`.rendering`).

Each frame is decoded exactly once; windows are cut from the decoded frames in
memory (the optional labelled video reads the frames again, for display). Both
modes run the same windows; they differ in which windows a frame's label takes.
LRCN's per-frame layers run once per frame and only its LSTM head once per
window (:class:`coreLib.inference.window_runners.SharedFrameRunner`).
"""

import dataclasses
import os
import time
from typing import Optional

import numpy as np

from coreLib import folder_swap, storage
from coreLib.data import manifest as manifest_lib
from coreLib.detection import events as events_lib, fusion, live_run, live_sources, outputs
from coreLib.detection import runtime
from coreLib.detection.labelling import label_sequence
from coreLib.detection.config import DetectConfig
from coreLib.detection.results import DetectResult, SequenceDetection
from coreLib.detection.sources import (SequenceSource, VideoFrames, discover_sources,
                                       png_frame_chunks, prefetch)
from coreLib.errors import ActrecogError
from coreLib.progress import progress_bar
from coreLib.inference import stream_steps, window_runners

# The split folders that mark a BII dataset's root (--out may not lie below it).
DATASET_SPLITS = ("Train", "Test", "TestDetection")


def dataset_root(source: str) -> Optional[str]:
    """The BII dataset folder SOURCE lies in: the nearest folder above (or equal to)
    SOURCE that holds a Train/, Test/ or TestDetection/ folder on SOURCE's way down
    (``data`` for ``data/TestDetection/seq``); None for a recording outside one."""
    path, child = os.path.realpath(source), None
    while True:
        if (child is None or child in DATASET_SPLITS) and any(
                os.path.isdir(os.path.join(path, split)) for split in DATASET_SPLITS):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path, child = parent, os.path.basename(path)


def _check_out_dir(out_dir: str, source: str) -> None:
    """--out lies outside SOURCE and the dataset it belongs to, and is new, empty
    or an earlier detect.py output (replaced as a whole). Creates nothing."""
    if not (storage.is_remote(out_dir) or storage.is_remote(source)):
        checks = [("SOURCE", source)] if storage.isdir(source) else []
        root = dataset_root(source)
        if root:
            checks.append(("dataset", root))
        for what, folder in checks:
            if storage.is_within(out_dir, folder):
                raise ActrecogError(f"--out {out_dir}: lies inside the {what} {folder}; "
                                    f"choose a folder outside it")
    folder_swap.check_replaceable(out_dir, outputs.SUMMARY_NAME, "--out", "detect.py")


def _check_recorded_options(config: DetectConfig, mode: str) -> None:
    """Options of live runs and online mode, refused where they do not apply."""
    if config.raw_format:
        raise ActrecogError(f"--raw-format: for SOURCE - (raw frames on standard input), "
                            f"not {config.source}")
    if config.events and mode != "online":
        raise ActrecogError(f"--events: events are decided online; add --mode online "
                            f"(offline sees the frames after each one)")
    if config.online_runner != "stream" and mode != "online":
        raise ActrecogError(f"--online-runner {config.online_runner}: how a streaming "
                            f"model runs online; add --mode online (offline runs the "
                            f"windows around each frame)")
    events_lib.check_events_path(config.events)


def _recorded_events(detection: SequenceDetection, manifest: manifest_lib.Manifest,
                     config: DetectConfig, name_sequence: bool) -> list:
    """The events a live run over the recording's frames gives, in its order."""
    if not config.events:
        return []
    found = events_lib.events_of_labels(detection.labels, detection.smoothed,
                                        manifest.classes, config.delay,
                                        events_lib.nominal_times(config.fps))
    if name_sequence:
        for event in found:
            event["sequence"] = detection.source.name
    return found


def _model_probabilities(chunks, manifest: manifest_lib.Manifest, kind: str, runner,
                         mode: str, config: DetectConfig, sequence: SequenceSource,
                         bar) -> np.ndarray:
    """``(N, K)`` float32 per-frame probabilities, after the fixed lag."""
    if kind == "stream":
        probabilities = stream_steps.stream_probabilities(chunks, runner, manifest.dtype, bar)
    else:
        rows = window_runners.window_probabilities(chunks, manifest, runner,
                                                   config.batch_size, bar)
        if len(rows) < manifest.seq_len:
            raise ActrecogError(f"{sequence.path}: {len(rows)} frames, fewer than the "
                                f"model's window of {manifest.seq_len}")
        probabilities = fusion.frame_probabilities(rows, manifest.seq_len, mode)
    delay = fusion.resolve_delay(config.delay, manifest.seq_len, mode)
    return fusion.delayed_probabilities(probabilities, delay)


def detect_sequence(sequence: SequenceSource, manifest: manifest_lib.Manifest, kind: str,
                    runner, mode: str, config: DetectConfig) -> SequenceDetection:
    """Runs detection on one recording (no file written).

    Args:
        sequence: the recording.
        manifest: window shape, dtype, classes.
        kind, runner: from :func:`coreLib.inference.runners.load_runner`.
        mode: ``offline`` or ``online``.
        config: smoothing, batch size, workers, progress.

    Raises:
        ActrecogError: a frame that cannot be read or decoded, a video shorter
            than the window.
    """
    began = time.perf_counter()
    decode_count = [0]

    def counted(chunks):
        for chunk in chunks:
            decode_count[0] += len(chunk)
            yield chunk

    boxes = None if manifest.frames == "full" else {}
    if sequence.is_video:
        chunks = VideoFrames(sequence.path, manifest.image_dim).chunks(config.batch_size)
    else:
        chunks = png_frame_chunks(sequence, manifest, config.batch_size, config.workers,
                                  boxes)
    chunks = prefetch(counted(chunks))
    bar = progress_bar(sequence.num_frames or None, desc=sequence.name, unit="frame",
                       enabled=config.progress)
    try:
        probabilities = _model_probabilities(chunks, manifest, kind, runner, mode, config,
                                             sequence, bar)
    except BaseException:
        bar.leave = False   # the error line replaces the bar
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - began
    detection = label_sequence(sequence, probabilities, manifest, mode, config, seconds,
                               decode_count[0])
    if boxes is not None:
        ordered = [boxes[(sequence.path, index)] for index in range(len(boxes))]
        detection.crop_boxes = np.stack([box.as_array() for box in ordered])
        detection.frames_without_hand = sum(not box.found for box in ordered)
    return detection


def _truncation_warning(sequence: SequenceSource, frames_read: int) -> list:
    """A video that ends before the frame count its container declares (a
    truncated or damaged file) is detected as far as it reads, with a warning."""
    declared = sequence.num_frames
    if not declared or frames_read >= declared:
        return []
    return [f"{sequence.path}: read {frames_read} frames, its container declares "
            f"{declared} (truncated or damaged?); the {frames_read} read were detected"]


def detect(config: DetectConfig) -> DetectResult:
    """Detects actions in every recording of SOURCE and writes the outputs.

    Every input is checked before the model runs, and every output is rendered
    before the first is written, so bad input leaves no output of this run.

    Raises:
        ActrecogError: any bad input (see
            :func:`coreLib.detection.sources.discover_sources`,
            :func:`coreLib.inference.model_loading.load_model`, :func:`detect_sequence`).
    """
    if live_sources.is_live_source(config.source):
        return live_run.detect_live(config)
    began = time.perf_counter()
    manifest = runtime.checked_model_spec(config)
    _check_out_dir(config.out_dir, config.source)
    sources = discover_sources(config.source, manifest)
    mode = config.mode or ("online" if sources[0].is_video else "offline")
    _check_recorded_options(config, mode)
    config = dataclasses.replace(config, delay=fusion.resolve_delay(config.delay,
                                                                    manifest.seq_len, mode))
    _, kind, runner = runtime.load_runner(config, manifest, mode)

    detections, warnings = [], []
    with events_lib.EventsFile(config.events) as events:
        for sequence in sources:
            detection = detect_sequence(sequence, manifest, kind, runner, mode, config)
            if sequence.is_video:   # now the real frame count is known
                warnings += _truncation_warning(sequence, len(detection.labels))
                sequence = dataclasses.replace(sequence, num_frames=len(detection.labels))
                detection.source = sequence
            detections.append(detection)
            events.write(_recorded_events(detection, manifest, config, len(sources) > 1))

    summary = outputs.build_summary(config, manifest, mode, kind, detections)
    if warnings:
        summary["warnings"] = warnings
    files = outputs.write_outputs(config, manifest, mode, detections, summary, began)
    return DetectResult(tuple(detections), summary, tuple(files))
