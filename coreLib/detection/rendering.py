"""Pictures of a detection: the timeline PNG (truth above prediction) and the
labelled video (each frame with its label, score and the timeline strip)."""

import itertools
import io
import os
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import frames, manifest as manifest_lib
from coreLib.detection import metrics as metrics_lib
from coreLib.detection.results import SequenceDetection
from coreLib.detection.sources import SequenceSource, open_video
from coreLib.errors import ActrecogError
from coreLib.evaluation import video
from coreLib.progress import progress_bar


def class_colours(classes: Tuple[str, ...]) -> List[Tuple[float, float, float]]:
    """One RGB colour (0-1) per class; no-action (last) light grey."""
    import matplotlib
    palette = matplotlib.colormaps["tab20"].colors
    # tab20 comes in dark/light pairs of one hue: the ten dark ones first, so
    # neighbouring classes never share a hue below 11 actions.
    palette = palette[0::2] + palette[1::2]
    colours = [tuple(palette[index % len(palette)][:3]) for index in range(len(classes) - 1)]
    return colours + [(0.9, 0.9, 0.9)]


def render_timeline_png(truth: Optional[np.ndarray], prediction: np.ndarray,
                        classes: Tuple[str, ...], title: str) -> bytes:
    """Ground truth above prediction, one colour per class, frames along x."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    colours = class_colours(classes)
    rows = ([("ground truth", truth)] if truth is not None else []) + [("prediction",
                                                                      prediction)]
    figure = Figure(figsize=(12, 1.2 + 0.6 * len(rows)))
    axes = figure.add_subplot()
    shown = set()
    for row, (_, values) in enumerate(rows):
        y = len(rows) - 1 - row
        for run in metrics_lib.label_runs(values):
            axes.broken_barh([(run.start, run.length)], (y + 0.1, 0.8),
                             facecolors=colours[run.label])
            shown.add(run.label)
    axes.set_yticks([len(rows) - 1 - row + 0.5 for row in range(len(rows))],
                    labels=[name for name, _ in rows])
    axes.set_xlim(0, len(prediction))
    axes.set_ylim(0, len(rows))
    axes.set_xlabel("frame")
    axes.set_title(title)
    handles = [Patch(facecolor=colours[index], label=classes[index]) for index in sorted(shown)]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
                frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


TIMELINE_STRIP_HEIGHT = 24
CURSOR_COLOUR = (255, 255, 255)   # BGR white
LABEL_TEXT_COLOUR = (0, 255, 0)   # BGR green
TRUTH_TEXT_COLOUR = (0, 255, 255)  # BGR yellow


@dataclass
class PendingVideo:
    """A labelled video written under a temporary name, renamed by :meth:`commit`."""
    temp_path: str
    final_path: str

    def commit(self) -> str:
        os.replace(self.temp_path, self.final_path)
        return self.final_path

    def discard(self) -> None:
        if os.path.exists(self.temp_path):
            os.remove(self.temp_path)


def timeline_strip(truth: Optional[np.ndarray], prediction: np.ndarray,
                   classes: Tuple[str, ...], width: int) -> np.ndarray:
    """``(TIMELINE_STRIP_HEIGHT, width, 3)`` uint8 BGR: truth (top half, when
    known) and prediction (bottom half) as class colours along x."""
    import cv2
    palette = (np.array(class_colours(classes))[:, ::-1] * 255).astype(np.uint8)
    rows = [truth if truth is not None else prediction, prediction]
    strip = np.stack([palette[row] for row in rows])            # (2, N, 3)
    return cv2.resize(strip, (width, TIMELINE_STRIP_HEIGHT), interpolation=cv2.INTER_NEAREST)


def _display_frames(sequence: SequenceSource, modality: str) -> Iterator[np.ndarray]:
    """``(H, W, 3)`` uint8 BGR frames for the video, read again from the source."""
    if sequence.is_video:
        capture = open_video(sequence.path)
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield image
        finally:
            capture.release()
    for index in range(sequence.num_frames):
        yield video.read_display_frame(frames.frame_path(sequence.path, modality, index),
                                       modality)
@dataclass(frozen=True)
class _VideoLayout:
    """Where things go on a labelled video's frame (pixels)."""
    width: int
    height: int            # of the source frame, even
    band_height: int       # the text lines beneath it
    total_height: int      # frame, band and timeline strip, even
    text: "object"         # coreLib.evaluation.video.band_layout's result


def _draw_frame(image: np.ndarray, index: int, detection: SequenceDetection,
                classes: Tuple[str, ...], where: _VideoLayout, strip: np.ndarray) -> np.ndarray:
    """``(total_height, width, 3)`` uint8 BGR: frame ``index`` letterboxed, its
    label, score and truth beneath, then the timeline strip with a cursor."""
    import cv2

    count, truth, layout = len(detection.labels), detection.source.truth, where.text
    canvas = np.zeros((where.total_height, where.width, 3), np.uint8)
    canvas[:where.height] = video.letterbox(image, where.width, where.height)
    label = classes[detection.labels[index]]
    lines = [(f"{index}: {label} {detection.scores[index]:.2f}", LABEL_TEXT_COLOUR)]
    if truth is not None:
        lines.append((f"truth: {classes[truth[index]]}", TRUTH_TEXT_COLOUR))
    for line, (text, colour) in enumerate(lines, start=1):
        cv2.putText(canvas, text, (layout.margin, where.height + line * layout.line_height
                                   - layout.margin // 2),
                    video.FONT, layout.font_scale, colour, layout.thickness, cv2.LINE_AA)
    top = where.height + where.band_height
    canvas[top:top + TIMELINE_STRIP_HEIGHT] = strip
    cursor = min(where.width - 1, int(index * where.width / max(count, 1)))
    canvas[top:top + TIMELINE_STRIP_HEIGHT, cursor] = CURSOR_COLOUR
    return canvas


def render_labelled_video(detection: SequenceDetection, manifest: manifest_lib.Manifest,
                          final_path: str, fps: float, progress: bool) -> PendingVideo:
    """Writes ``<name>.avi`` under a temporary name: each frame with its label and
    score, the truth when known, and the timeline strip with a cursor beneath.

    Raises:
        ActrecogError: the video cannot be written, or a frame cannot be read.
    """
    import cv2

    if storage.is_remote(final_path):
        raise ActrecogError(f"{final_path}: --video writes local files only")
    classes, sequence = manifest.classes, detection.source
    count = len(detection.labels)
    frames_iterator = _display_frames(sequence, manifest.modality)
    first = next(frames_iterator)
    width, height = first.shape[1] + first.shape[1] % 2, first.shape[0] + first.shape[0] % 2
    longest = max(classes, key=len)
    layout = video.band_layout(width, f"truth: {longest}  00000 1.00")
    band_height = 2 * layout.line_height + layout.margin
    total_height = height + band_height + TIMELINE_STRIP_HEIGHT
    total_height += total_height % 2
    where = _VideoLayout(width, height, band_height, total_height, layout)
    strip = timeline_strip(sequence.truth, detection.labels, classes, width)
    pending = PendingVideo(storage.temporary_name(final_path) + video.VIDEO_SUFFIX, final_path)
    writer = video.open_mjpg_writer(pending.temp_path, fps, (width, total_height), final_path)
    try:
        with progress_bar(count, desc=f"video {sequence.name}", unit="frame",
                          enabled=progress) as bar:
            for index, image in enumerate(itertools.chain([first], frames_iterator)):
                if index >= count:
                    break
                canvas = _draw_frame(image, index, detection, classes, where, strip)
                ok, encoded = cv2.imencode(".jpg", canvas,
                                           [cv2.IMWRITE_JPEG_QUALITY, video.JPEG_QUALITY])
                if not ok:
                    raise ActrecogError(f"{final_path}: JPEG encoding failed")
                writer.write(encoded.reshape(1, -1))
                bar.update(1)
        writer.release()
    except BaseException:
        writer.release()
        pending.discard()
        raise
    return pending
