"""The live detector: frames pushed one at a time, events back the moment they
are decided - the Python API detect.py's live runs are built on.

    detector = LiveDetector.open("model/CausalMobileNet.weights.h5")
    for depth in camera:                       # (H, W) uint16 millimetres
        for event in detector.push(depth):
            print(event["event"], event["action"], event["frame"])
    result = detector.close()                  # the last events and the summary

A frame is labelled exactly as ``detect.py --mode online`` labels the same frames
recorded as a folder (same model call per frame, same fixed lag, smoothing and
labelling; see :mod:`coreLib.detection.events`).
"""

import time
from dataclasses import dataclass, replace
from typing import List, Optional

import numpy as np

from coreLib.data import frames, hand_crop, manifest as manifest_lib
from coreLib import models
from coreLib.detection import events as events_lib, fusion, live_sources, outputs
from coreLib.detection import runtime
from coreLib.detection import segments as segments_lib
from coreLib.detection.labelling import label_sequence
from coreLib.detection.config import DetectConfig
from coreLib.detection.results import SequenceDetection
from coreLib.detection.sources import SequenceSource
from coreLib.errors import ActrecogError
from coreLib.inference import model_spec, stream_steps

LIVE_SOURCE = live_sources.API_SOURCE


@dataclass
class LiveResult:
    """What :meth:`LiveDetector.close` gives.

    Attributes:
        events: the events decided at the end of the stream (the frames still
            waiting for their lag, the segment still open).
        summary: ``summary.json``'s content (without ``seconds``), with ``live``:
            frames, events, dropped frames.
        detection: every frame's probabilities, labels and the segments.
    """
    events: List[dict]
    summary: dict
    detection: SequenceDetection


def load_stream_step(config: DetectConfig, manifest: manifest_lib.Manifest):
    """``(kind, StreamStep)`` for a live run: the model's stream step when it
    streams and ``config.online_runner`` is ``stream`` (for train.py's weights by
    default the LiteRT one of :mod:`coreLib.export.litert_cache`), else its window
    runner over the last L frames."""
    _, kind, runner = runtime.load_runner(config, manifest, "online")
    if kind == "stream":
        return kind, runner
    return kind, stream_steps.WindowRunnerStep(runner, manifest)


class LiveDetector:
    """Online detection of one stream, a frame at a time.

    Build it with :meth:`open`. Not thread-safe: one caller pushes.

    Args:
        config: the model, smoothing, delay and ``fps`` (times of frames without
            timestamps); ``source`` names the stream in the outputs.
        manifest: window shape, classes and modality of the model.
        kind: ``stream`` (a streaming model) or ``window``.
        step: its :class:`coreLib.inference.stream_steps.StreamStep`.
        name: the stream's output name (``<name>.segments.json`` ...).
    """

    def __init__(self, config: DetectConfig, manifest: manifest_lib.Manifest, kind: str,
                 step: stream_steps.StreamStep, name: str = LIVE_SOURCE):
        self.config, self.manifest, self.kind, self.step = config, manifest, kind, step
        self.name = name
        self.delay = fusion.resolve_delay(config.delay, manifest.seq_len, "online")
        background = manifest.num_classes - 1
        smoothing = segments_lib.SmoothingConfig(config.smooth, config.min_frames,
                                                 config.hysteresis, True)
        self.labeler = events_lib.FrameLabeler(manifest.num_classes, self.delay, smoothing,
                                               background)
        self.stamps = events_lib.StampedTimes()
        self.nominal = events_lib.nominal_times(config.fps)
        self.maker = events_lib.EventMaker(manifest.classes, self.delay, self._time_of)
        self.spec = frames.modality_spec(manifest.modality)
        self.state = step.initial_state()
        self.rows: List[np.ndarray] = []     # causal (K,) float32 per frame
        self.event_count, self.dropped_frames = 0, 0
        self.began, self.seconds = time.perf_counter(), 0.0
        self.closed = False
        # Hand-centred models: the same causal tracker as main.py's, frame by frame.
        hand_config = manifest.hand_crop_config()
        self.tracker = None if hand_config is None else hand_crop.HandTracker(hand_config)
        self.boxes: List[np.ndarray] = []

    @classmethod
    def open(cls, model_path: str, model_name: Optional[str] = None, *,
             delay: Optional[int] = None, smooth: int = 1, min_frames: int = 1,
             hysteresis: float = 0.0, fps: float = 15.0, manifest_dir: Optional[str] = None,
             modality: Optional[str] = None, stream_runtime: str = "litert",
             online_runner: str = "stream", source: str = LIVE_SOURCE,
             name: str = LIVE_SOURCE) -> "LiveDetector":
        """A detector for a model file.

        Args:
            model_path: train.py's ``.weights.h5`` (its ``run_config.json``
                beside it), a ``.keras`` model, or an export.py model (``.tflite``,
                SavedModel folder, OUT_DIR).
            model_name: the model's name; None: from run_config.json / export.json.
            delay: frames a label waits for (None: L - 1).
            smooth, min_frames, hysteresis: see
                :class:`coreLib.detection.segments.SmoothingConfig`.
            fps: frames per second of frames pushed without a timestamp.
            manifest_dir, modality: as detect.py's ``--manifest``/``--modality``.
            stream_runtime: ``litert`` (a streaming model's weights run as LiteRT,
                converted once and cached beside them) or ``keras``.
            online_runner: a streaming model: ``stream`` (its stream step with
                its state) or ``window`` (its window model over the last L
                frames at every frame: about L times the arithmetic, the labels of
                ``detect.py --mode online --online-runner window``).
            source: what the stream is, for the summary (``-``, ``cam:0``).
            name: the stream's output name (``<name>.segments.json``).

        Raises:
            ActrecogError: a model that cannot be read or does not fit.
        """
        model_name = model_name or model_spec.model_name_of(model_path)
        models.get_model_builder(model_name)
        config = DetectConfig(model_name, model_path, source, mode="online",
                              manifest_dir=manifest_dir, modality=modality, smooth=smooth,
                              min_frames=min_frames, hysteresis=hysteresis, delay=delay,
                              fps=fps, progress=False, stream_runtime=stream_runtime,
                              online_runner=online_runner)
        manifest = model_spec.resolve_model_spec(model_path, manifest_dir, modality)
        kind, step = load_stream_step(config, manifest)
        return cls(config, manifest, kind, step, name)

    def _time_of(self, frame: int) -> float:
        return self.stamps(frame) if self.stamps.first is not None else self.nominal(frame)

    def prepared(self, frame: np.ndarray, depth: Optional[np.ndarray] = None) -> np.ndarray:
        """``(H, W)`` or ``(H, W, C)`` pixels of the model's modality (uint16
        millimetres for depth/confi, uint8 RGB for colour) -> ``(1, D, D, C)`` as the
        stream step takes them; hand-centred models cut the frame to the box the
        tracker finds in the depth frame (``depth``, or the frame itself for a
        depth model).

        Raises:
            ActrecogError: another dtype or channel count, or a hand-centred
                confi/colour model without its depth frame.
        """
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = frame[:, :, np.newaxis]
        if (frame.ndim != 3 or frame.shape[2] != self.spec.channels
                or frame.dtype != np.dtype(self.spec.dtype)):
            raise ActrecogError(f"frame {len(self.rows)}: {frame.dtype} of shape "
                                f"{frame.shape}; {self.manifest.modality} frames are "
                                f"(H, W, {self.spec.channels}) {self.spec.dtype}")
        if self.tracker is None:
            pixels = frames.resize_frame(frame, self.manifest.image_dim)[np.newaxis]
        else:
            pixels = self._hand_centred(frame, depth)[np.newaxis]
        if self.step.stored_pixels:
            return np.ascontiguousarray(pixels)
        return stream_steps.scale_stored(pixels, self.manifest.dtype)

    def _hand_centred(self, frame: np.ndarray, depth: Optional[np.ndarray]) -> np.ndarray:
        """``(D, D, C)``: the frame cut to the tracker's box for this frame."""
        if depth is None:
            if self.manifest.modality != hand_crop.LOCATING_MODALITY:
                raise ActrecogError(f"frame {len(self.rows)}: the model takes hand-centred "
                                    f"{self.manifest.modality} frames; give each frame's "
                                    f"depth frame too (push(frame, depth=...))")
            depth = frame
        depth = np.asarray(depth)
        if depth.ndim == 2:
            depth = depth[:, :, np.newaxis]
        if depth.ndim != 3 or depth.shape[2] != 1 or depth.dtype != np.uint16:
            raise ActrecogError(f"frame {len(self.rows)}: depth frames are (H, W, 1) "
                                f"uint16, got {depth.dtype} of shape {depth.shape}")
        try:
            box = self.tracker.push(depth)
        except ValueError as error:
            raise ActrecogError(f"frame {len(self.rows)}: {error}") from None
        self.boxes.append(box)
        return hand_crop.model_frame(frame, box, depth.shape, self.manifest.image_dim,
                                     self.tracker.config)

    def push(self, frame: np.ndarray, timestamp: Optional[float] = None,
             depth: Optional[np.ndarray] = None) -> List[dict]:
        """One frame; returns the events it decides (often none).

        Args:
            frame: ``(H, W)`` / ``(H, W, C)`` pixels: uint16 (depth, confi) or uint8
                RGB (colour), any size (resized as main.py stores frames).
            timestamp: its time in seconds (any clock); None: ``frame / fps``.
                Give all frames a timestamp or none.
            depth: hand-centred confi/colour models: the depth frame of the same
                moment, ``(H, W)`` uint16 (where the hand is found).

        Returns:
            Event dicts (see :mod:`coreLib.detection.events`), in order.
        """
        if self.closed:
            raise ActrecogError("push after close")
        began = time.perf_counter()
        index = len(self.rows)
        if timestamp is not None:
            self.stamps.add(index, float(timestamp))
        probabilities, self.state = self.step.step(self.prepared(frame, depth), self.state)
        row = np.asarray(probabilities, np.float32).reshape(-1)
        self.rows.append(row)
        decided = [self.maker.label(frame_index, label, smoothed, index)
                   for frame_index, label, smoothed in self.labeler.push(row)]
        found = [event for events in decided for event in events]
        self.event_count += len(found)
        self.seconds += time.perf_counter() - began
        return found

    def close(self) -> LiveResult:
        """Ends the stream: the frames still waiting for their lag are labelled.

        Raises:
            ActrecogError: no frame was pushed.
        """
        if self.closed:
            raise ActrecogError("close called twice")
        self.closed = True
        count = len(self.rows)
        if count == 0:
            raise ActrecogError(f"{self.config.source}: no complete frame arrived")
        last = count - 1
        found = []
        for frame_index, label, smoothed in self.labeler.finish():
            found += self.maker.label(frame_index, label, smoothed, last)
        found += self.maker.finish(count)
        self.event_count += len(found)
        return LiveResult(found, *self._summary_and_detection())

    def _summary_and_detection(self):
        probabilities = fusion.delayed_probabilities(np.stack(self.rows), self.delay)
        sequence = SequenceSource(self.name, self.config.source, False, len(self.rows))
        config = replace(self.config, delay=self.delay)
        detection = label_sequence(sequence, probabilities, self.manifest, "online",
                                   config, self.seconds, len(self.rows))
        if self.tracker is not None:
            detection.crop_boxes = np.stack([box.as_array() for box in self.boxes])
            detection.frames_without_hand = self.tracker.frames_without_hand
        summary = outputs.build_summary(config, self.manifest, "online", self.kind, [detection])
        summary["live"] = {"frames": len(self.rows), "events": self.event_count,
                           "dropped_frames": self.dropped_frames,
                           "wall_seconds": round(time.perf_counter() - self.began, 3)}
        return summary, detection
