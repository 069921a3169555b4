"""int8 tensors of a LiteRT file <-> float32, with the tensor's own (scale, zero point)
as the interpreter's input/output details give them."""

import numpy as np


def quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """float32 -> the tensor's int8 with its (scale, zero point), saturating."""
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(values / np.float32(scale)) + zero_point, info.min,
                   info.max).astype(detail["dtype"])


def dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """The tensor's integers -> float32 with its (scale, zero point)."""
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - np.float32(zero_point))
            * np.float32(scale)).astype(np.float32)
