"""How exported files compare with the Keras model: probabilities over the parity
windows (window files, and stream steps fed the windows' frames one by one), the
figures and targets per file, and the int8 stream's drift over a long stream."""

from typing import Callable, Optional

import numpy as np

from coreLib.export import config as config_lib
from coreLib.inference import exported_model
from coreLib.preprocessing import records


def keras_probabilities(model, windows: np.ndarray, dtype: str,
                        batch_size: int) -> np.ndarray:
    """``(N, K)`` float32: the Keras model on the scaled windows, batch by batch."""
    parts = [np.asarray(model(records.scale_pixels(windows[begin:begin + batch_size], dtype),
                              training=False))
             for begin in range(0, len(windows), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def exported_probabilities(runner: exported_model.ExportedModel, windows: np.ndarray,
                           batch_size: int) -> np.ndarray:
    """``(N, K)`` float32 from an exported model, batch by batch."""
    return np.concatenate([runner.predict(windows[begin:begin + batch_size])
                           for begin in range(0, len(windows), batch_size)])


def stream_probabilities(step: Callable, initial_states, windows: np.ndarray
                         ) -> np.ndarray:
    """Probabilities after feeding each window's frames one by one from zero state.

    Args:
        step: ``step(frames (N, D, D, C), states) -> (probabilities, states)``.
        initial_states: the zero states for N streams.
        windows: ``(N, L, D, D, C)`` stored dtype.

    Returns:
        ``(N, K)`` float32 probabilities of the last step.
    """
    states = initial_states
    probabilities = None
    for offset in range(windows.shape[1]):
        probabilities, states = step(np.ascontiguousarray(windows[:, offset]), states)
    return np.asarray(probabilities, np.float32)


def accuracy(probabilities: np.ndarray, labels: Optional[np.ndarray]) -> Optional[float]:
    """Micro F1 of single-label windows (= the share predicted right), None without
    labels."""
    if labels is None:
        return None
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def compare(reference: np.ndarray, probabilities: np.ndarray,
            tolerance: Optional[float] = None, format_name: Optional[str] = None,
            labels: Optional[np.ndarray] = None) -> dict:
    """Figures of one file against the Keras probabilities, and whether it meets
    its target: max |diff| within ``tolerance`` (float32 files), else top-1
    agreement of :data:`config.MIN_TOP1_AGREEMENT` and, for int8 with labels,
    Test accuracy at most :data:`config.MAX_INT8_ACCURACY_LOSS` points under Keras's.

    Returns:
        ``{"max_abs_diff", "top1_agreement", "accuracy"?, "reference_accuracy"?,
        "tolerance" | "min_top1_agreement", "passed"}``.
    """
    max_diff = float(np.max(np.abs(reference - probabilities)))
    agreement = float(np.mean(reference.argmax(axis=1) == probabilities.argmax(axis=1)))
    figures = {"max_abs_diff": max_diff, "top1_agreement": agreement}
    if labels is not None:
        figures.update(accuracy=accuracy(probabilities, labels),
                       reference_accuracy=accuracy(reference, labels))
    if tolerance is not None:
        figures.update(tolerance=tolerance, passed=bool(max_diff <= tolerance))
        return figures
    wanted = config_lib.MIN_TOP1_AGREEMENT[format_name]
    passed = agreement >= wanted
    figures["min_top1_agreement"] = wanted
    if format_name == config_lib.INT8_FORMAT and labels is not None:
        loss = 100 * (figures["reference_accuracy"] - figures["accuracy"])
        figures["max_accuracy_loss_points"] = config_lib.MAX_INT8_ACCURACY_LOSS
        passed = passed and loss <= config_lib.MAX_INT8_ACCURACY_LOSS + 1e-9
    figures["passed"] = bool(passed)
    return figures


def run_stream(runner: exported_model.ExportedModel, frames_in: np.ndarray) -> np.ndarray:
    """``(T, K)``: one stream fed ``frames_in (T, D, D, C)`` frame by frame."""
    states = runner.initial_state(1)
    rows = []
    for frame in frames_in:
        probabilities, states = runner.stream_step(frame[None], states)
        rows.append(probabilities[0])
    return np.stack(rows)


def drift(float_stream: exported_model.ExportedModel, int8_stream: exported_model.ExportedModel,
          frames_in: np.ndarray, source: str) -> dict:
    """The int8 stream against the float32 stream over a long stream: top-1
    agreement over the first and the last :data:`config.DRIFT_SPAN` frames; passed
    when the last is no worse than the first (the int8 state does not drift)."""
    agree = (run_stream(float_stream, frames_in).argmax(axis=1)
             == run_stream(int8_stream, frames_in).argmax(axis=1))
    span = min(config_lib.DRIFT_SPAN, len(agree))
    first, last = float(np.mean(agree[:span])), float(np.mean(agree[-span:]))
    return {"frames": int(len(frames_in)), "source": source, "span": span,
            "first_agreement": first, "last_agreement": last,
            "overall_agreement": float(np.mean(agree)), "passed": bool(last >= first)}
