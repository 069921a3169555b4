"""The chief's files besides checkpoints: weights, history, curves, TensorBoard.

MODEL_DIR gets ``<model>.weights.h5`` (best by eval loss), ``<model>_final.weights.h5``,
``history.json``, ``<model>_history.png`` and ``logs/train``, ``logs/eval``; every
file is written atomically (local or ``gs://``).
"""

import io
import math
import os
import shutil
import tempfile
from typing import List

from coreLib import storage
from coreLib.training.run_setup import RunSetup

tf = storage.tf

HISTORY_NAME = "history.json"
LOGS_FOLDER = "logs"


def best_weights_name(model_name: str) -> str:
    """``<model>.weights.h5``: the best weights by eval loss."""
    return f"{model_name}.weights.h5"


def final_weights_name(model_name: str) -> str:
    """``<model>_final.weights.h5``: the weights after the last epoch."""
    return f"{model_name}_final.weights.h5"


def history_plot_name(model_name: str) -> str:
    """``<model>_history.png``: the loss and accuracy curves."""
    return f"{model_name}_history.png"


def _save_weights(model, model_dir: str, name: str) -> None:
    """Keras writes .h5 to local files only: write locally, then copy atomically."""
    local_dir = tempfile.mkdtemp(prefix="actrecog-weights-")
    try:
        local = os.path.join(local_dir, name)
        model.save_weights(local)
        target = storage.join(model_dir, name)
        with storage.atomic_path(target) as temp:
            storage.copy_file(local, temp)
    finally:
        shutil.rmtree(local_dir, ignore_errors=True)


def plot_history(history: List[dict], model_name: str) -> bytes:
    """Loss and accuracy curves per epoch, as PNG bytes (headless)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    epochs = [entry["epoch"] for entry in history]
    figure, (loss_axes, accuracy_axes) = pyplot.subplots(1, 2, figsize=(10, 4))
    for axes, key in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.plot(epochs, [entry[f"train_{key}"] for entry in history], "o-", label="train")
        values = [entry.get(f"eval_{key}") for entry in history]
        if any(value is not None for value in values):
            axes.plot(epochs, [math.nan if v is None else v for v in values], "o-",
                      label="eval")
        axes.set_xlabel("epoch")
        axes.set_ylabel(key)
        axes.set_title(f"{model_name} {key}")
        axes.legend()
        axes.grid(True, alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    pyplot.close(figure)
    return buffer.getvalue()


def write_history_files(model_dir: str, model_name: str, history: List[dict]) -> None:
    """``history.json`` and, once an epoch is in it, ``<model>_history.png``."""
    storage.write_json_atomic(storage.join(model_dir, HISTORY_NAME), history)
    if history:
        storage.write_bytes_atomic(storage.join(model_dir, history_plot_name(model_name)),
                                   plot_history(history, model_name))


def _scalar_metadata():
    """What TensorBoard's scalar plugin tags its summaries with.

    ``tf.summary.scalar`` needs the ``tensorboard`` package, which TensorFlow no
    longer installs; ``tf.summary.write`` with this metadata writes the same event.
    """
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
    return metadata


def write_scalar(writer, name: str, value: float, step: int) -> None:
    """Writes one TensorBoard scalar (float32) at ``step``."""
    with writer.as_default():
        tf.summary.write(name, tf.constant(value, tf.float32), step=step,
                         metadata=_scalar_metadata())


class RunOutputs:
    """The chief's files besides checkpoints: weights, history, TensorBoard.

    Every end-of-epoch or end-of-run output goes through here, so adding a metric
    or a hook touches this class only. On non-chief workers every method is a no-op.
    """

    def __init__(self, setup: RunSetup, model_name: str):
        self.model_dir = setup.model_dir
        self.model_name = model_name
        self.writers = None
        if setup.chief:
            self.writers = {name: tf.summary.create_file_writer(
                storage.join(self.model_dir, LOGS_FOLDER, name)) for name in ("train", "eval")}

    def step_loss(self, loss: float, global_step: int) -> None:
        if self.writers:
            write_scalar(self.writers["train"], "step_loss", loss, global_step)

    def history(self, history: List[dict]) -> None:
        if self.writers:
            write_history_files(self.model_dir, self.model_name, history)

    def epoch_scalars(self, entry: dict) -> None:
        if not self.writers:
            return
        for name in ("train", "eval"):
            if entry[f"{name}_loss"] is None:
                continue
            write_scalar(self.writers[name], "loss", entry[f"{name}_loss"], entry["epoch"])
            write_scalar(self.writers[name], "accuracy", entry[f"{name}_accuracy"],
                         entry["epoch"])
            if name == "train" and entry["sequences_per_second"]:
                write_scalar(self.writers[name], "sequences_per_second",
                             entry["sequences_per_second"], entry["epoch"])
            self.writers[name].flush()

    def weights(self, model, name: str) -> None:
        if self.writers:
            _save_weights(model, self.model_dir, name)

    def close(self) -> None:
        for writer in (self.writers or {}).values():
            writer.close()
