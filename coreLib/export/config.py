"""What export.py is asked to do: formats, file names, tolerances and targets."""

from dataclasses import dataclass, field
from typing import Optional, Tuple

from coreLib.errors import ActrecogError
from coreLib.inference import export_info

SAVED_MODEL_FORMAT = "saved_model"
FLOAT32_FORMAT = "float32"
FP16_FORMAT = "fp16"
DYNAMIC_FORMAT = "dynamic"
INT8_FORMAT = "int8"
FORMAT_NAMES = (SAVED_MODEL_FORMAT, FLOAT32_FORMAT, FP16_FORMAT, DYNAMIC_FORMAT, INT8_FORMAT)
LITERT_FORMATS = (FLOAT32_FORMAT, FP16_FORMAT, DYNAMIC_FORMAT, INT8_FORMAT)
# The stream step's files: <M>_stream.tflite (float32) and <M>_int8_stream.tflite.
STREAM_SUFFIX = "stream"

# Tolerances on max |p_exported - p_keras| over the parity windows (float32 files:
# a miss is an export fault, ParityError, exit 1).
REBUILT_TOLERANCE = 1e-6
SAVED_MODEL_TOLERANCE = 1e-5
LITERT_FLOAT32_TOLERANCE = 1e-4
# Quantised files: the share of windows whose top-1 class agrees with Keras.
MIN_TOP1_AGREEMENT = {FP16_FORMAT: 0.99, DYNAMIC_FORMAT: 0.99, INT8_FORMAT: 0.98}
# int8: Test accuracy (micro F1) at most this many points under the float32 file's.
MAX_INT8_ACCURACY_LOSS = 1.0
DEFAULT_PARITY_WINDOWS = 1024
DEFAULT_CALIBRATION_WINDOWS = 300
DEFAULT_DRIFT_FRAMES = 1000
DRIFT_SPAN = 100
PARITY_SEED = 0


class ParityError(Exception):
    """A float32 export whose outputs miss their tolerance (export.py exits 1)."""


class BelowTargetError(Exception):
    """Quantised files below their targets, without --allow-below-target (exit 1).

    Attributes:
        lines: one line per file below target.
    """

    def __init__(self, lines):
        super().__init__("; ".join(lines))
        self.lines = tuple(lines)


def litert_file_name(model_name: str, format_name: str, stream: bool = False) -> str:
    """``<M>.tflite``, ``<M>_fp16.tflite``, ``<M>_dynamic.tflite``, ``<M>_int8.tflite``;
    with ``stream``: ``<M>_stream.tflite`` (float32) or ``<M>_int8_stream.tflite``."""
    parts = [model_name]
    if format_name != FLOAT32_FORMAT:
        parts.append(format_name)
    if stream:
        parts.append(STREAM_SUFFIX)
    return "_".join(parts) + export_info.TFLITE_SUFFIX


def parity_key(format_name: str, stream: bool = False) -> str:
    """The file's entry in ``export.json``'s ``parity``: ``litert_<format>`` /
    ``stream_litert`` (float32 stream) / ``stream_litert_<format>``."""
    if stream:
        return "stream_litert" if format_name == FLOAT32_FORMAT else f"stream_litert_{format_name}"
    return f"litert_{format_name}"


def parse_formats(text: str) -> Tuple[str, ...]:
    """``--formats`` (comma-separated) -> format names in :data:`FORMAT_NAMES` order.

    Raises:
        ActrecogError: an unknown or empty name.
    """
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in FORMAT_NAMES:
            raise ActrecogError(f"--formats: unknown format {name!r}; choose from "
                                f"{', '.join(FORMAT_NAMES)}")
    return tuple(name for name in FORMAT_NAMES if name in names)


@dataclass(frozen=True)
class ExportConfig:
    """What export.py was asked to do.

    Attributes:
        model_name: ``CausalMobileNet``, ``ConvNet3D``, ``LRCN`` or ``DUMMY``.
        model_path: ``.weights.h5`` (train.py) or a full ``.keras`` model.
        out_dir: folder to write (an earlier export there is replaced as a whole).
        manifest_dir: folder holding ``dataset.json`` (default: MODEL_PATH's
            ``run_config.json``, whose ``dataset_dir`` gives the DataSet).
        formats: a subset of :data:`FORMAT_NAMES`.
        parity_json: Test JSON whose windows the parity checks run on (default:
            the DataSet's Test JSON when reachable; otherwise seeded random windows).
        parity_windows: at most this many windows, spread over the JSON.
        window_stream: also export a ``stream_step`` that keeps the last L-1
            frames as its state, for a model without a stream mode of its own.
        batch_size: windows per call in the parity runs.
        calibration_dir: DataSet folder whose Train (else Eval) windows calibrate
            the int8 files (default: the DataSet of ``manifest_dir`` / the run).
        calibration_windows: windows the int8 calibration uses.
        random_calibration: calibrate on seeded random windows when no DataSet is
            reachable (bench/export.py's size and speed figures only: the
            accuracy of such files means nothing).
        allow_below_target: publish files below their targets (still reported).
        drift_frames: frames of the int8 stream's drift check on TestDetection.
    """
    model_name: str
    model_path: str
    out_dir: str
    manifest_dir: Optional[str] = None
    formats: Tuple[str, ...] = FORMAT_NAMES
    parity_json: Optional[str] = None
    parity_windows: int = DEFAULT_PARITY_WINDOWS
    window_stream: bool = False
    batch_size: int = 16
    calibration_dir: Optional[str] = None
    calibration_windows: int = DEFAULT_CALIBRATION_WINDOWS
    random_calibration: bool = False
    allow_below_target: bool = False
    drift_frames: int = DEFAULT_DRIFT_FRAMES

    def __post_init__(self):
        if not self.formats:
            raise ValueError("formats must name at least one format")
        unknown = [name for name in self.formats if name not in FORMAT_NAMES]
        if unknown:
            raise ValueError(f"unknown formats {unknown}")
        for name in ("parity_windows", "batch_size", "calibration_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.drift_frames < 0:
            raise ValueError(f"drift_frames must be >= 0, got {self.drift_frames}")


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the ``export.json`` content, the files' paths, and the
    lines about files below their targets (published with --allow-below-target)."""
    description: dict
    files: Tuple[str, ...] = field(default_factory=tuple)
    below_target: Tuple[str, ...] = field(default_factory=tuple)
