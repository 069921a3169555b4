"""What detect.py writes and prints for the sequences it detected.

All into ``out_dir`` (never into the dataset), written only after every
sequence has been detected, the folder replaced as one (:func:`write_outputs`)::

    <name>.segments.json   {"name", "source", "mode", "num_frames", "segments":
                            [{start, end (inclusive), action, score}]}
    <name>.frames.csv      frame,label,score,<one column per class> (smoothed
                           probabilities)
    timeline_<name>.png    ground truth above prediction, one colour per class
    <name>.avi             with ``video``: each frame, its label and score, the
                           timeline strip beneath
    summary.json           settings, per-sequence and overall metrics, speed

:func:`summary_lines` is the table detect.py prints.
"""

import csv
import io
import os
import shutil
import time
from typing import Any, List, Tuple

import numpy as np

from coreLib import folder_swap, storage
from coreLib.data import manifest as manifest_lib
from coreLib.detection import live_sources, metrics as metrics_lib
from coreLib.detection.config import DetectConfig
from coreLib.detection.rendering import render_labelled_video, render_timeline_png
from coreLib.detection.results import DetectResult, SequenceDetection

SUMMARY_NAME = "summary.json"
TOOL = "detect"
CSV_DIGITS = 6


# Hand-centred frames: the crop box of each frame, after the class columns.
CROP_COLUMNS = ("crop_x", "crop_y", "crop_side", "crop_depth_mm")


def frames_csv(detection: SequenceDetection, classes: Tuple[str, ...]) -> bytes:
    """``frame,label,score,<class>...`` per frame (smoothed probabilities), and for
    hand-centred frames the crop box (:data:`CROP_COLUMNS`, depth-frame pixels
    and millimetres)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    boxes = detection.crop_boxes
    writer.writerow(["frame", "label", "score", *classes]
                    + (list(CROP_COLUMNS) if boxes is not None else []))
    formatted = np.char.mod(f"%.{CSV_DIGITS}f", detection.smoothed)
    scores = np.char.mod(f"%.{CSV_DIGITS}f", detection.scores)
    crops = np.char.mod("%.2f", boxes) if boxes is not None else None
    for index, label in enumerate(detection.labels):
        writer.writerow([index, classes[label], scores[index], *formatted[index]]
                        + (list(crops[index]) if crops is not None else []))
    return buffer.getvalue().encode("utf-8")


def source_name(source: str) -> str:
    """A source as the outputs name it: a path made absolute, a live stream
    (``-``, ``cam:0``, ``/dev/video0``) as given."""
    if live_sources.is_live_source(source) or source == live_sources.API_SOURCE:
        return source
    return storage.absolute(source)


def round_metrics(metrics: dict) -> dict:
    """The metrics with every float rounded to 4 decimals (what the JSON files hold)."""
    return {key: (round(value, 4) if isinstance(value, float) else value)
            for key, value in metrics.items()}



def build_summary(config: DetectConfig, manifest: manifest_lib.Manifest, mode: str, kind: str,
             detections: list) -> dict:
    """``summary.json`` (without ``seconds``): the run, overall and per-sequence metrics."""
    scored = [d.counts for d in detections if d.counts is not None]
    overall = metrics_lib.summarise(scored, mode == "online") if scored else None
    total_frames = sum(len(d.labels) for d in detections)
    detect_seconds = sum(d.seconds for d in detections)
    summary = {
        "model_name": config.model_name,
        "model_path": storage.absolute(config.model_path),
        "source": source_name(config.source),
        "mode": mode,
        "runner": kind,
        "smooth": config.smooth, "min_frames": config.min_frames,
        "hysteresis": config.hysteresis, "delay": config.delay,
        "classes": list(manifest.classes),
        "window_shape": list(manifest.window_shape),
        "modality": manifest.modality,
        **({} if manifest.frames == "full" else {
            "frames": manifest.frames,
            "frames_without_hand": sum(d.frames_without_hand for d in detections)}),
        "num_sequences": len(detections),
        "num_frames": total_frames,
        "decoded_frames": sum(d.decoded_frames for d in detections),
        "detect_seconds": round(detect_seconds, 3),
        "frames_per_second": round(total_frames / detect_seconds, 2) if detect_seconds else None,
        "overall": round_metrics(overall) if overall else None,
        "sequences": {
            d.source.name: {"source": source_name(d.source.path),
                            "label_file": d.source.label_path,
                            "num_frames": len(d.labels),
                            "num_segments": len(d.segments),
                            "seconds": round(d.seconds, 3),
                            "metrics": round_metrics(d.metrics) if d.metrics else None}
            for d in detections},
    }
    return summary


def rendered_outputs(config: DetectConfig, manifest: manifest_lib.Manifest, mode: str,
                      detections: list) -> List[Tuple[str, Any]]:
    """``(file name, bytes)`` of every per-sequence output, rendered before any is
    written (a failure while rendering leaves no output behind)."""
    outputs: List[Tuple[str, Any]] = []
    for d in detections:
        name = d.source.name
        segments_doc = {"name": name, "source": source_name(d.source.path),
                        "mode": mode, "num_frames": len(d.labels),
                        "classes": list(manifest.classes), "segments": d.segments}
        outputs.append((f"{name}.segments.json", storage.json_bytes(segments_doc)))
        outputs.append((f"{name}.frames.csv", frames_csv(d, manifest.classes)))
        outputs.append((f"timeline_{name}.png", render_timeline_png(
            d.source.truth, d.labels, manifest.classes,
            f"{name}: {config.model_name}, {mode}"
            + (f", labels {config.delay} frames late" if config.delay else ""))))
    return outputs


def _carry_events_file(config: DetectConfig, staging: str) -> None:
    """An ``--events`` file inside --out (written while the run went on) moves into
    the staging folder, so the swap keeps it with the run it belongs to (an open
    file follows its rename)."""
    path = config.events
    if not path or path == "-" or not os.path.exists(path):
        return
    if not storage.is_within(path, config.out_dir):
        return
    relative = os.path.relpath(os.path.realpath(path), os.path.realpath(config.out_dir))
    target = os.path.join(staging, relative)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.rename(path, target)


def write_outputs(config: DetectConfig, manifest: manifest_lib.Manifest, mode: str,
                  detections: list, summary: dict, began: float) -> List[str]:
    """Renders every output and puts them in ``--out`` as one; returns their paths.

    A local ``--out`` is built in full in a staging folder beside it and then
    swapped in (:mod:`coreLib.folder_swap`): it holds at every instant the old
    run's files or the new run's, never a mix, and a failure leaves the old one.
    A URI ``--out`` is emptied (``summary.json`` first) and written file by file,
    ``summary.json`` last. ``summary`` gains ``seconds``, the time since ``began``
    (``time.perf_counter()``).
    """
    outputs = rendered_outputs(config, manifest, mode, detections)
    out_dir = config.out_dir
    remote = storage.is_remote(out_dir)
    if remote:
        storage.makedirs(out_dir)
        folder_swap.clear_remote(out_dir, SUMMARY_NAME)
        target = out_dir
    else:   # built beside --out, then swapped in (see coreLib.folder_swap)
        folder_swap.recover(out_dir, TOOL)
        target = folder_swap.staging_folder(out_dir, TOOL)
        os.makedirs(target)
    names = []
    try:
        if config.video:
            for d in detections:
                name = f"{d.source.name}.avi"
                render_labelled_video(d, manifest, storage.join(target, name), config.fps,
                                      config.progress).commit()
                names.append(name)
        summary["seconds"] = round(time.perf_counter() - began, 3)
        outputs.append((SUMMARY_NAME, storage.json_bytes(summary)))   # last: it marks a whole run
        for name, data in outputs:
            storage.write_bytes_atomic(storage.join(target, name), data)
            names.append(name)
        if not remote:
            _carry_events_file(config, target)
            folder_swap.swap_in(target, out_dir, TOOL)
    except BaseException:
        if not remote:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return [storage.join(out_dir, name) for name in names]


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
