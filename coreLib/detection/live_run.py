"""detect.py on a live source (``-``, ``cam:N``, ``/dev/videoN``): frames as they
come through a :class:`coreLib.detection.live.LiveDetector`, events written the
moment they are decided, and the usual outputs at the end.

The run ends at the end of the stream, on SIGINT (Ctrl-C) or on SIGTERM: the
outputs for the frames seen are then written, each file atomically, and the exit
code is 0. A second signal ends the process at once; what it leaves is the
outputs already renamed into place, never a half-written file (temporaries are
removed first).
"""

import contextlib
import io
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from typing import Optional

import numpy as np

from coreLib import folder_swap
from coreLib.data import manifest as manifest_lib
from coreLib.detection import fusion, live_sources, outputs, runtime
from coreLib.detection.config import DetectConfig
from coreLib.detection import events as events_lib
from coreLib.detection.live import LiveDetector, load_stream_step
from coreLib.detection.results import DetectResult
from coreLib.errors import ActrecogError
from coreLib.inference import model_spec

# How often the loop looks at the stop flag while no frame comes (seconds).
POLL_SECONDS = 0.1


class StopSignals:
    """SIGINT/SIGTERM: the first asks the run to stop; the second exits at once,
    after removing the outputs being built beside --out (no half-written file)."""

    def __init__(self, out_dir: str, log):
        self.out_dir, self.log = out_dir, log
        self.requested: Optional[str] = None
        self.previous = {}

    def _handle(self, number, _frame):
        name = signal.Signals(number).name
        if self.requested is None:
            self.requested = name
            self.log(f"{name}: stopping; writing the outputs for the frames seen "
                     f"(again to quit at once)")
            return
        with contextlib.suppress(Exception):   # the half-built outputs beside --out
            folder_swap.recover(self.out_dir, outputs.TOOL)
        os._exit(128 + number)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *_):
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def check_live_config(config: DetectConfig, manifest: manifest_lib.Manifest):
    """The raw format (None for a camera), checked before anything is opened.

    Raises:
        ActrecogError: offline mode, --video, a missing or unfitting
            --raw-format, a camera for a model of another modality, an events
            file in a folder that does not exist.
    """
    source = config.source
    if config.mode == "offline":
        raise ActrecogError(f"--mode offline: {source} is a live stream; live runs are "
                            f"online")
    if config.video:
        raise ActrecogError(f"--video: re-reads recorded frames; not for the live "
                            f"source {source}")
    events_lib.check_events_path(config.events)
    if manifest.frames != "full" and manifest.modality != "depth":
        raise ActrecogError(f"{source}: the model takes hand-centred {manifest.modality} "
                            f"frames, which need a depth stream beside them; a live "
                            f"source gives one stream (use the Python API's "
                            f"push(frame, depth=...))")
    if source != live_sources.STDIN_SOURCE:
        if config.raw_format:
            raise ActrecogError(f"--raw-format: for SOURCE - (raw frames on standard "
                                f"input), not {source}")
        if manifest.modality != model_spec.VIDEO_MODALITY:
            raise ActrecogError(f"{source}: a camera gives colour frames, the model takes "
                                f"{manifest.modality} frames")
        return None
    if not config.raw_format:
        raise ActrecogError("-: raw frames on standard input need --raw-format FMT:WxH "
                            "(e.g. gray16le:320x240)")
    return live_sources.parse_raw_format(config.raw_format, manifest.modality)


def _stdin_bytes():
    """Standard input as an unbuffered binary stream of its own: the reading
    thread may still wait in it at exit, and a raw file has no lock for the
    interpreter's shutdown to wait for (``sys.stdin.buffer`` has one). A stream
    without a descriptor (tests) is read as it is."""
    try:
        return io.FileIO(sys.stdin.fileno(), "rb", closefd=False)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return sys.stdin.buffer


def _frames_of(raw_format, capture):
    """``(frame, timestamp or None)`` pairs of the source, and the raw reader."""
    if capture is not None:
        return iter(live_sources.CameraFrames(capture)), None
    reader = live_sources.RawFrames(_stdin_bytes(), raw_format)
    return ((frame, None) for frame in reader), reader


def _follow(detector: LiveDetector, feed: live_sources.FrameFeed, stop: StopSignals,
            events: events_lib.EventsFile, latencies: list, log) -> None:
    """Pushes the feed's frames until it ends or a stop is asked for; appends each
    frame's seconds from its arrival to its events being written to ``latencies``."""
    reported, next_report = 0, time.monotonic() + 1.0
    while stop.requested is None:
        try:
            item = feed.get(POLL_SECONDS)
        except StopIteration:
            return
        if item is not None:
            frame, stamp, arrival = item
            events.write(detector.push(frame, stamp))
            latencies.append(time.perf_counter() - arrival)
        if feed.realtime and time.monotonic() >= next_report:
            if feed.dropped > reported:
                log(f"{feed.dropped - reported} frames dropped in the last second "
                    f"({feed.dropped} in all): the model is slower than the source")
                reported = feed.dropped
            next_report = time.monotonic() + 1.0


def latency_figures(latencies: list) -> dict:
    """p50/p99/max of the seconds from a frame's arrival to its events being out
    (the fixed lag not counted: the label decided is frame t - delay's), in ms."""
    if not latencies:
        return {}
    values = np.asarray(latencies) * 1e3
    return {"latency_ms_p50": round(float(np.percentile(values, 50)), 3),
            "latency_ms_p99": round(float(np.percentile(values, 99)), 3),
            "latency_ms_max": round(float(values.max()), 3)}


def detect_live(config: DetectConfig, log=lambda line: print(
        f"detect.py: {line}", file=sys.stderr, flush=True)) -> DetectResult:
    """Runs a live source to its end (or a signal) and writes the outputs.

    Raises:
        ActrecogError: bad input (see :func:`check_live_config`), a camera that
            cannot be opened, a stream without one complete frame (then nothing
            is left behind).
    """
    began = time.perf_counter()
    manifest = runtime.checked_model_spec(config)
    raw_format = check_live_config(config, manifest)
    kind, step = load_stream_step(config, manifest)
    capture = live_sources.open_camera(config.source) if raw_format is None else None
    config = replace(config, mode="online",
                     delay=fusion.resolve_delay(config.delay, manifest.seq_len, "online"))
    # Creates nothing: the outputs are built beside --out and swapped in at the end.
    folder_swap.check_replaceable(config.out_dir, outputs.SUMMARY_NAME, "--out", "detect.py")
    detector = LiveDetector(config, manifest, kind, step, live_sources.live_name(config.source))
    frames_iterable, reader = _frames_of(raw_format, capture)
    realtime = config.realtime if config.realtime is not None else capture is not None
    with StopSignals(config.out_dir, log) as stop, \
            events_lib.EventsFile(config.events) as events:
        feed = live_sources.FrameFeed(frames_iterable, realtime)
        latencies = []
        _follow(detector, feed, stop, events, latencies, log)
        detector.dropped_frames = feed.dropped
        if reader is not None and reader.partial_bytes and detector.rows:
            log(f"warning: standard input ended inside a frame: {reader.partial_bytes} of "
                f"{raw_format.frame_bytes} bytes dropped; {len(detector.rows)} complete "
                f"frames kept")
        result = detector.close()
        events.write(result.events)
        result.summary["live"]["stopped_by"] = stop.requested or "end of stream"
        result.summary["live"].update(latency_figures(latencies))
        files = outputs.write_outputs(config, manifest, "online", [result.detection],
                                      result.summary, began)
    return DetectResult((result.detection,), result.summary, tuple(files))
