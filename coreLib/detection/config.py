"""What detect.py is asked to do: :class:`DetectConfig`, checked when built."""

from dataclasses import dataclass
from typing import Optional

from coreLib.detection import segments as segments_lib

MODES = ("offline", "online")
# How a streaming model runs online (the names of the runner kinds summary.json records).
ONLINE_RUNNERS = ("stream", "window")
DEFAULT_OUT_DIR = "detections"


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
            :class:`coreLib.detection.segments.SmoothingConfig`.
        delay: online only: frames a label waits for (frame t is labelled when
            frame t+delay arrives; see
            :func:`coreLib.detection.fusion.delayed_probabilities`); None: L - 1
            online (every window holding frame t has a say), 0 offline.
        batch_size: windows (frames, for PNG decoding) per model call.
        workers: frame-decoding threads.
        video: also write a labelled video per sequence.
        fps: frames per second of the labelled videos, and of a stream without
            timestamps (an event's time_s is its frame / fps).
        progress: report progress per sequence (a bar on a terminal).
        events: online only: write each event as a JSON line to this file
            (``-``: standard output) the moment it is decided.
        raw_format: SOURCE ``-`` only: ``FMT:WxH`` of the raw frames on stdin.
        realtime: live sources: drop the oldest waiting frames when the model
            falls behind (None: for cameras yes, for standard input no).
        stream_runtime: online, a streaming model's weights: ``litert`` runs its
            stream step converted to LiteRT once (cached beside the weights),
            ``keras`` the Keras step.
        online_runner: online, a model that streams: ``stream`` runs its stream
            step with its state, one frame's arithmetic per frame; ``window`` runs
            the window model over the last L frames at every frame (about L times
            the arithmetic; with the default lag exactly the offline probabilities,
            D frames later). Window models run windows online anyway, and offline
            it changes nothing (detect.py refuses ``window`` offline).
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
    events: Optional[str] = None
    raw_format: Optional[str] = None
    realtime: Optional[bool] = None
    stream_runtime: str = "litert"
    online_runner: str = "stream"

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
        if self.stream_runtime not in ("litert", "keras"):
            raise ValueError(f"stream_runtime must be litert or keras, got "
                             f"{self.stream_runtime!r}")
        if self.online_runner not in ONLINE_RUNNERS:
            raise ValueError(f"online_runner must be one of {ONLINE_RUNNERS}, got "
                             f"{self.online_runner!r}")

