"""Drawings and text summaries of the models, made from the built models themselves.

``python -m coreLib.models.model_info info`` (``make info``) builds ConvNet3D, LRCN and
CausalMobileNet at
the published shape (6, 64, 64, 3; 17 classes) and writes, per model,
``info/<name>.png`` (a vertical stack of boxes: layer name, class, output shape,
parameters) and ``info/<name>.txt`` (the Keras summary). The drawing uses
matplotlib only: graphviz ``dot`` is not needed.
"""

import io
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from coreLib import cli, models, storage

INFO_DIR = "info"
# File stems of the 2019 tool's drawings.
FILE_STEMS = {models.CONVNET3D_NAME: "convNet3D", models.LRCN_NAME: "LRCN",
              models.DUMMY_NAME: "DUMMY"}
# Kernel (..., channels[, multiplier]): one filter per channel, no sum over channels.
DEPTHWISE_KINDS = ("DepthwiseConv1D", "DepthwiseConv2D", "CausalTemporalConv")
# What `make info` draws: the published models and the streaming one.
INFO_MODELS = (models.CONVNET3D_NAME, models.LRCN_NAME,
               models.streaming.CAUSAL_MOBILENET_NAME)
PUBLISHED_SHAPE = (6, 64, 3, 17)   # seq_len, image_dim, channels, num_classes
# Box colours by layer family, so blocks read at a glance.
COLOURS = {"Conv": "#9ecae1", "Pool": "#c7e9c0", "Norm": "#fdd0a2", "ReLU": "#dadaeb",
           "LSTM": "#fcbba1", "Dense": "#fee391", "Dropout": "#e5e5e5",
           "Input": "#ffffff", "Flatten": "#d9d9d9"}


@dataclass(frozen=True)
class LayerRow:
    """One drawn box."""
    name: str
    class_name: str
    output_shape: Tuple[Optional[int], ...]
    params: int


def main_output(layer):
    """The layer's output tensor (the first one where a layer also returns its
    stream state, as CausalMobileNet's temporal convolutions and pooling do)."""
    output = layer.output
    return output[0] if isinstance(output, (list, tuple)) else output


def layer_rows(model) -> List[LayerRow]:
    """The model's layers in order, with class (wrapped class for TimeDistributed),
    output shape (batch dimension None) and parameter count."""
    rows = []
    for layer in model.layers:
        class_name = type(layer).__name__
        inner = getattr(layer, "layer", None)
        if class_name in ("TimeDistributed", "PerFrame") and inner is not None:
            class_name = f"{class_name}({type(inner).__name__})"
        rows.append(LayerRow(layer.name, class_name, tuple(main_output(layer).shape),
                             int(layer.count_params())))
    return rows


def layer_multiply_adds(layer) -> int:
    """Multiply-adds of one layer's forward pass for one example (batch of 1).

    Counts the layers that hold nearly all of the arithmetic: convolutions of any
    rank (output positions x kernel size x input channels x filters), depthwise
    ones (output positions x kernel size x channels x multiplier) including
    CausalMobileNet's temporal ones (positions x frames x channels), Dense
    (positions x inputs x units) and LSTM (steps x 4 gates x (inputs + units) x
    units), also inside TimeDistributed or PerFrame (whose output shape has the
    frames, so a per-frame layer counts once per frame). Pooling, normalisation,
    activations and residual additions (a few operations per value) count as 0.
    """
    core = getattr(layer, "layer", None) or layer  # TimeDistributed's inner layer
    kind = type(core).__name__
    output_shape = tuple(main_output(layer).shape[1:])
    if kind in DEPTHWISE_KINDS or kind == "Dense" or (kind.startswith("Conv")
                                                     and "Transpose" not in kind):
        # Every output position multiplies the whole kernel once (a depthwise
        # kernel holds one filter per channel, so the same product holds).
        return int(np.prod(output_shape[:-1])) * int(np.prod(core.kernel.shape))
    if kind == "LSTM":
        steps = int(layer.input.shape[1])
        return steps * (int(np.prod(core.cell.kernel.shape))
                        + int(np.prod(core.cell.recurrent_kernel.shape)))
    return 0


def model_flops(model) -> int:
    """Floating-point operations of one example's forward pass: 2 x multiply-adds."""
    return 2 * sum(layer_multiply_adds(layer) for layer in model.layers)


def _shape_text(shape: Sequence[Optional[int]]) -> str:
    return "(" + ", ".join("B" if size is None else str(size) for size in shape) + ")"


def _colour(class_name: str) -> str:
    for key, colour in COLOURS.items():
        if key in class_name:
            return colour
    return "#ffffff"


def draw_model(model, path: str) -> List[LayerRow]:
    """Draws the model as a vertical stack of boxes and saves it as PNG.

    Args:
        model: a built ``keras.Model``.
        path: the PNG to write (atomically).

    Returns:
        The drawn rows, top to bottom (one per ``model.layers`` entry).
    """
    import matplotlib
    matplotlib.use("Agg")   # headless: never opens a window
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch


    rows = layer_rows(model)
    box_height, gap = 0.62, 0.38
    step = box_height + gap
    height = len(rows) * step + 1.2
    figure = plt.figure(figsize=(7.5, height * 0.62), dpi=110)
    axes = figure.add_axes([0, 0, 1, 1])
    axes.set_xlim(0, 10)
    axes.set_ylim(0, height)
    axes.axis("off")
    total = sum(row.params for row in rows)
    axes.text(5, height - 0.45, f"{model.name}: {total:,} parameters",
              ha="center", va="center", fontsize=13, fontweight="bold")
    for index, row in enumerate(rows):
        top = height - 1.0 - index * step
        axes.add_patch(FancyBboxPatch((0.4, top - box_height), 9.2, box_height,
                                      boxstyle="round,pad=0.02,rounding_size=0.08",
                                      facecolor=_colour(row.class_name),
                                      edgecolor="#444444", linewidth=0.8))
        axes.text(0.6, top - box_height / 2, f"{row.name}", ha="left", va="center",
                  fontsize=9.5, fontweight="bold")
        axes.text(3.2, top - box_height / 2, row.class_name, ha="left", va="center",
                  fontsize=9)
        axes.text(6.3, top - box_height / 2, _shape_text(row.output_shape), ha="left",
                  va="center", fontsize=9, family="monospace")
        axes.text(9.45, top - box_height / 2, f"{row.params:,}", ha="right",
                  va="center", fontsize=9)
        if index + 1 < len(rows):
            axes.annotate("", xy=(5, top - step), xytext=(5, top - box_height),
                          arrowprops={"arrowstyle": "-|>", "color": "#444444",
                                      "linewidth": 0.8})
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    storage.write_bytes_atomic(path, buffer.getvalue())
    return rows


def summary_text(model) -> str:
    """A plain-text summary: one line per layer (the drawn rows) and the totals."""
    rows = layer_rows(model)
    name_width = max(len("Layer"), *(len(row.name) for row in rows)) + 2
    class_width = max(len("Class"), *(len(row.class_name) for row in rows)) + 2
    shape_width = max(len("Output shape"),
                      *(len(_shape_text(row.output_shape)) for row in rows)) + 2
    header = (f"{'Layer':{name_width}}{'Class':{class_width}}"
              f"{'Output shape':{shape_width}}{'Params':>12}")
    lines = [f'Model: "{model.name}"  (B = batch)', header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row.name:{name_width}}{row.class_name:{class_width}}"
                     f"{_shape_text(row.output_shape):{shape_width}}{row.params:>12,}")
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    frozen = sum(int(np.prod(weight.shape)) for weight in model.non_trainable_weights)
    lines += ["-" * len(header),
              f"Total params: {trainable + frozen:,}",
              f"Trainable params: {trainable:,}",
              f"Non-trainable params: {frozen:,} (BatchNormalization moving statistics)"
              if frozen else "Non-trainable params: 0"]
    return "\n".join(lines) + "\n"


def write_info(model_names: Sequence[str], output_dir: str,
               shape: Sequence[int] = PUBLISHED_SHAPE) -> List[str]:
    """Builds each model and writes its ``<stem>.png`` and ``<stem>.txt``.

    Args:
        model_names: names from ``models.MODEL_NAMES``.
        output_dir: folder or URI to write to.
        shape: ``(seq_len, image_dim, channels, num_classes)``.

    Returns:
        The paths written.

    Raises:
        ActrecogError: an unknown model name or an unwritable folder.
    """

    storage.check_writable(output_dir)
    written = []
    for name in model_names:
        model = models.build_model(name, *shape)
        stem = FILE_STEMS.get(name, name)
        png = storage.join(output_dir, f"{stem}.png")
        text = storage.join(output_dir, f"{stem}.txt")
        draw_model(model, png)
        storage.write_text_atomic(text, summary_text(model))
        written += [png, text]
    return written


def main(argv=None) -> int:
    """``python -m coreLib.models.model_info info`` (make info): drawings and summaries."""
    parser = cli.make_parser("model_info", "Draws the models and writes their summaries.")
    parser.add_argument("command", choices=["info"],
                        help="info: write <stem>.png and <stem>.txt per model")
    parser.add_argument("--models", nargs="+", default=list(INFO_MODELS),
                        help="models to describe")
    parser.add_argument("--output-dir", default=INFO_DIR, help="folder to write to")
    args = parser.parse_args(argv)
    for name in args.models:
        models.get_model_builder(name)      # unknown names fail before any work
    for path in write_info(args.models, args.output_dir):
        print(path)
    return 0


if __name__ == "__main__":
    cli.run_main(main, prog="model_info")
