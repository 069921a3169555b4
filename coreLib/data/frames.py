"""Reading the frames of one recorded sequence.

A sequence folder holds ``depth_<i>.png`` (16-bit, 1 channel), ``confi_<i>.png``
(16-bit, 1 channel) and ``color_<i>.png`` (8-bit, 3 channels), ``<i>`` a zero-based
index without padding. Frames are decoded with OpenCV from bytes read through
``coreLib.storage``, so a sequence may live in a local folder or a ``gs://`` bucket.

Colour frames are returned as RGB (OpenCV decodes BGR); single-channel frames keep
an explicit channel axis, so every frame is ``(H, W, C)``.
"""

import os
import posixpath
import re
from dataclasses import dataclass

import cv2
import numpy as np

from coreLib import storage
from coreLib.errors import ActrecogError


@dataclass(frozen=True)
class ModalitySpec:
    """What one modality's PNG files hold.

    Attributes:
        name: file prefix, ``color``, ``depth`` or ``confi``.
        channels: channels per pixel (3 or 1).
        dtype: numpy dtype name of a pixel value (``uint8`` or ``uint16``).
    """
    name: str
    channels: int
    dtype: str


# The value a stored pixel is divided by to give the models' input, by dtype;
# larger values (uint16 only) count as this one, so the input stays in [0, 1].
# 16-bit frames hold millimetres (depth) or IR return (confi) of a near-range
# camera: 4095, a 12-bit range (4.095 m of depth), puts a hand at 0.6 m near 0.15
# and a wall at 2 m near 0.5. Dividing by 65535 left every value below 0.05,
# where the first layer's biases (moved by Adam at the same step size as the
# weights) soon outweigh the input. A sensor's "invalid" codes (such as 32001)
# read as "far".
MODEL_INPUT_SCALE = {"uint8": 255.0, "uint16": 4095.0}


MODALITIES = {
    "color": ModalitySpec("color", 3, "uint8"),
    "depth": ModalitySpec("depth", 1, "uint16"),
    "confi": ModalitySpec("confi", 1, "uint16"),
}
# The original counted a sequence's frames by its colour files.
COUNTING_MODALITY = "color"


def modality_spec(modality: str) -> ModalitySpec:
    """Looks a modality up by name; raises ActrecogError listing valid names."""
    try:
        return MODALITIES[modality]
    except KeyError:
        raise ActrecogError(
            f"unknown modality {modality!r} (choose from {', '.join(MODALITIES)})") from None


def frame_path(sequence_dir: str, modality: str, index: int) -> str:
    """``<sequence_dir>/<modality>_<index>.png``."""
    name = f"{modality}_{index}.png"
    # Same rule as storage.join, without importing TensorFlow.
    if "://" in sequence_dir:
        return posixpath.join(sequence_dir, name)
    return os.path.join(sequence_dir, name)


def list_frame_indices(sequence_dir: str, modality: str) -> list:
    """Sorted frame indices of one modality in a sequence folder.

    Sorted as numbers (``color_10`` after ``color_9``), never as text.

    Args:
        sequence_dir: the sequence folder (local path or URI).
        modality: ``color``, ``depth`` or ``confi``.

    Returns:
        The indices found, ascending (possibly with gaps; see
        :func:`count_frames`).
    """
    pattern = re.compile(rf"^{re.escape(modality)}_(\d+)\.png$")
    indices = []
    for name in storage.listdir(sequence_dir):
        match = pattern.match(name)
        if match:
            indices.append(int(match.group(1)))
    return sorted(indices)


def count_frames(sequence_dir: str, modality: str = COUNTING_MODALITY) -> int:
    """Number of frames N of a sequence, checking indices run 0..N-1 without a gap.

    Raises:
        ActrecogError: no frames, or a missing index (named).
    """
    indices = list_frame_indices(sequence_dir, modality)
    if not indices:
        raise ActrecogError(f"{sequence_dir}: no {modality}_<i>.png frames")
    for expected, found in enumerate(indices):
        if found != expected:
            missing = frame_path(sequence_dir, modality, expected)
            raise ActrecogError(f"{missing}: frame missing (sequence has frames up to "
                                f"index {indices[-1]})")
    return len(indices)


def decode_frame(data: bytes, modality: str, path: str = "<bytes>") -> np.ndarray:
    """Decodes one PNG of a modality and checks its bit depth and channels.

    Args:
        data: the PNG file's bytes.
        modality: ``color``, ``depth`` or ``confi``.
        path: the file name, for error messages.

    Returns:
        ``(H, W, C)`` array, uint8 RGB for color, uint16 with C=1 otherwise.

    Raises:
        ActrecogError: corrupt file, wrong bit depth or wrong channel count.
    """
    spec = modality_spec(modality)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # an empty buffer fails an assertion instead of returning None
        image = None
    if image is None:
        raise ActrecogError(f"{path}: not a readable PNG image")
    if image.dtype != np.dtype(spec.dtype):
        bits = image.dtype.itemsize * 8
        raise ActrecogError(f"{path}: {bits}-bit pixels, {modality} frames must be "
                            f"{np.dtype(spec.dtype).itemsize * 8}-bit")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels != spec.channels:
        raise ActrecogError(f"{path}: {channels} channel(s), {modality} frames must "
                            f"have {spec.channels}")
    if image.ndim == 2:
        return image[:, :, np.newaxis]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frame_bytes(path: str, size: int = -1) -> bytes:
    """The first ``size`` bytes (all when -1) of a frame file, local or a URI.

    Local files are read with ``open``: no TensorFlow import (main.py's workers
    stay TF-free) and ~0.1 ms less per frame than tf.io.gfile; only a URI
    (``gs://...``) goes through gfile.

    Raises:
        ActrecogError: ``<path>: frame missing``.
        OSError / gfile errors: the file exists but cannot be read.
    """
    try:
        with storage.open_file(path, "rb") as handle:
            return handle.read(size)
    except FileNotFoundError:
        raise ActrecogError(f"{path}: frame missing") from None
    except Exception as error:
        # gfile's NotFoundError, by name: TensorFlow is not imported for local paths.
        if type(error).__name__ == "NotFoundError":
            raise ActrecogError(f"{path}: frame missing") from None
        raise


def read_frame(sequence_dir: str, modality: str, index: int) -> np.ndarray:
    """Reads and decodes one frame; see :func:`decode_frame` for the layout."""
    path = frame_path(sequence_dir, modality, index)
    return decode_frame(read_frame_bytes(path), modality, path)


def resize_frame(frame: np.ndarray, image_dim: int) -> np.ndarray:
    """Resizes an ``(H, W, C)`` frame to ``(image_dim, image_dim, C)``, same dtype.

    Area interpolation: the frames are shrunk several times, where it averages
    instead of aliasing.
    """
    if frame.shape[0] == image_dim and frame.shape[1] == image_dim:
        return frame
    resized = cv2.resize(frame, (image_dim, image_dim), interpolation=cv2.INTER_AREA)
    if resized.ndim == 2:
        resized = resized[:, :, np.newaxis]
    return resized
