"""videogen.py / coreLib.evaluation.video: chunking, label band colours, letterboxing, bad input."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import run_tool
from coreLib.evaluation import video

GREY = 90
# (frame size (w, h), truth, prediction): two sizes, right and wrong predictions.
ENTRIES = [((160, 120), "asl-blue", "asl-blue"),
           ((160, 120), "asl-blue", "ui-swipe"),
           ((120, 90), "ui-swipe", "ui-swipe"),
           ((160, 120), "no-action", "asl-j"),
           ((120, 90), "no-action", "no-action"),
           ((160, 120), "asl-j", "asl-j"),
           ((120, 90), "asl-j", "no-action")]



def draw_band(frame: np.ndarray, entry, layout) -> np.ndarray:
    """The frame with the label band below it.

    Args:
        frame: ``(H, W, 3)`` uint8 BGR.
        entry: its labels.
        layout: from :func:`video.band_layout` for width W.

    Returns:
        ``(H + layout.height, W, 3)`` uint8 BGR.
    """
    height, width = frame.shape[:2]
    return np.concatenate([frame, video.label_band(width, layout.height, entry, layout)])

def write_video_sec(root, entries=ENTRIES, name="video_sec_DUMMY.json") -> str:
    """Grey colour frames and linear-ramp depth frames, and a video_sec JSON."""
    folder = root / "seq"
    folder.mkdir(parents=True, exist_ok=True)
    listed = []
    for index, ((width, height), truth, prediction) in enumerate(entries):
        cv2.imwrite(str(folder / f"color_{index}.png"),
                    np.full((height, width, 3), GREY, np.uint8))
        depth = np.tile(np.linspace(500, 3000, width).astype(np.uint16), (height, 1))
        depth[:, :10] = 0   # no reading: drawn black
        cv2.imwrite(str(folder / f"depth_{index}.png"), depth)
        listed.append({"path": str(folder / f"color_{index}.png"), "truth": truth,
                       "prediction": prediction, "score": 0.9})
    path = root / name
    path.write_text(json.dumps(listed))
    return str(path)


def read_video(path):
    capture = cv2.VideoCapture(path)
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    capture.release()
    return decoded


def colour_counts(region):
    """Pixels that are clearly green, red and yellow (BGR input)."""
    blue, green, red = (region[..., channel].astype(int) for channel in range(3))
    return {"green": int(((green > 150) & (red < 100) & (blue < 100)).sum()),
            "red": int(((red > 150) & (green < 100) & (blue < 100)).sum()),
            "yellow": int(((red > 150) & (green > 150) & (blue < 100)).sum())}


def test_chunks_frame_counts_sizes_and_band_colours(tmp_path):
    json_path = write_video_sec(tmp_path)
    written = video.write_videos(video.VideoConfig(json_path, max_len=3, progress=False))
    stem = str(tmp_path / "video_sec_DUMMY")
    assert written == [f"{stem}_0.avi", f"{stem}_1.avi", f"{stem}_2.avi"]
    assert sorted(os.listdir(tmp_path)) == ["seq", "video_sec_DUMMY.json",
                                            "video_sec_DUMMY_0.avi", "video_sec_DUMMY_1.avi",
                                            "video_sec_DUMMY_2.avi"]
    chunks = [read_video(path) for path in written]
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    longest = max((text for _, truth, prediction in ENTRIES for text in
                   (video.TRUTH_PREFIX + truth, video.PREDICTION_PREFIX + prediction)),
                  key=len)
    # Chunk 0 and 1 hold a 160x120 frame: all frames letterboxed to 160x120.
    # Chunk 2 holds one 120x90 frame only.
    for chunk, width, height in ((chunks[0], 160, 120), (chunks[1], 160, 120),
                                 (chunks[2], 120, 90)):
        band = video.band_layout(width, longest).height
        for frame in chunk:
            assert frame.shape == (height + band + (height + band) % 2, width, 3)
    frames_in_order = [frame for chunk in chunks for frame in chunk]
    for frame, ((width, height), truth, prediction) in zip(frames_in_order, ENTRIES):
        image_height = 120 if frame.shape[1] == 160 else 90
        image = frame[:image_height]
        band = frame[image_height:]
        line = band.shape[0] // 2
        truth_line, prediction_line = colour_counts(band[:line]), colour_counts(band[line:])
        assert truth_line["yellow"] > 20 and truth_line["red"] == 0
        if truth == prediction:
            assert prediction_line["green"] > 20 and prediction_line["red"] == 0
        else:
            assert prediction_line["red"] > 20 and prediction_line["green"] == 0
        if frame.shape[1] == width:
            assert abs(float(image[10:-10, 10:-10].mean()) - GREY) < 3
    # The 120x90 frame in chunk 1 is scaled to 160x120: it fills the frame exactly
    # (same 4:3 aspect), so no black bars.
    assert abs(float(chunks[1][2][5:115, 5:155].mean()) - GREY) < 3


def test_rerun_with_fewer_chunks_removes_only_stale_chunks(tmp_path):
    json_path = write_video_sec(tmp_path)
    stem = str(tmp_path / "video_sec_DUMMY")
    assert len(video.write_videos(video.VideoConfig(json_path, max_len=2,
                                                    progress=False))) == 4
    # Names that only look like chunks of this JSON, and another JSON's chunk.
    unrelated = ["video_sec_DUMMY_05.avi", "video_sec_DUMMY_2_0.avi",
                 "video_sec_DUMMY_x.avi", "video_sec_DUMMY_9.avi.bak",
                 "video_sec_DUMMY_9.AVI", "video_sec_OTHER_3.avi", "xvideo_sec_DUMMY_3.avi"]
    for name in unrelated:
        (tmp_path / name).write_bytes(b"keep")
    written = video.write_videos(video.VideoConfig(json_path, max_len=3, progress=False))
    assert written == [f"{stem}_0.avi", f"{stem}_1.avi", f"{stem}_2.avi"]
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["seq", "video_sec_DUMMY.json", "video_sec_DUMMY_0.avi", "video_sec_DUMMY_1.avi",
         "video_sec_DUMMY_2.avi"] + unrelated)
    assert [len(read_video(path)) for path in written] == [3, 3, 1]
    video.write_videos(video.VideoConfig(json_path, max_len=100, progress=False))
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["seq", "video_sec_DUMMY.json", "video_sec_DUMMY_0.avi"] + unrelated)
    assert len(read_video(f"{stem}_0.avi")) == len(ENTRIES)


def test_band_is_drawn_below_the_frame_only():
    # The band is drawn once per label pair and pasted under every frame: its text
    # must not reach up into the frame.
    for width in (48, 120, 320, 640):
        layout = video.band_layout(width, video.TRUTH_PREFIX + "ui-doubleclick")
        entry = video.LabelledFrame("x", "ui-doubleclick", "asl-blue")
        frame = np.full((30, width, 3), GREY, np.uint8)
        banded = draw_band(frame, entry, layout)
        assert banded.shape == (30 + layout.height, width, 3)
        np.testing.assert_array_equal(banded[:30], frame)
        band = banded[30:]
        assert band[:, :, 2].max() > 150              # red prediction text drawn
        # The top row of the band is background: text starts below the frame.
        np.testing.assert_array_equal(band[0], 0)


def test_letterbox_pads_other_aspect_with_black():
    image = np.full((50, 100, 3), 200, np.uint8)
    boxed = video.letterbox(image, 100, 100)
    assert boxed.shape == (100, 100, 3)
    np.testing.assert_array_equal(boxed[:25], 0)
    np.testing.assert_array_equal(boxed[75:], 0)
    np.testing.assert_array_equal(boxed[25:75], 200)


def test_depth_frames_are_colour_mapped(tmp_path):
    json_path = write_video_sec(tmp_path, ENTRIES[:2])
    written = video.write_videos(video.VideoConfig(json_path, max_len=10, fps=5,
                                                   modality="depth", progress=False))
    assert written == [str(tmp_path / "video_sec_DUMMY_0.avi")]
    frame = read_video(written[0])[0]
    image = frame[:120]
    assert image[:, :8].max() < 30                    # no reading: black
    left, right = image[60, 20].astype(int), image[60, 150].astype(int)
    assert np.abs(left - right).max() > 100             # near and far differ in colour
    assert cv2.VideoCapture(written[0]).get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    expected = video.colour_map_depth(cv2.imread(str(tmp_path / "seq" / "depth_0.png"),
                                                 cv2.IMREAD_UNCHANGED))
    assert np.abs(image[20:100, 20:140].astype(int)
                  - expected[20:100, 20:140].astype(int)).mean() < 8


@pytest.mark.parametrize("case, message", [
    ("no_truth", "entry 1: missing truth"),
    ("missing_frame", "color_2.png: frame missing"),
    ("not_a_list", "expected a non-empty JSON list"),
])
def test_bad_json_is_one_line_and_writes_nothing(tmp_path, capsys, case, message):
    json_path = write_video_sec(tmp_path, ENTRIES[:4])
    entries = json.loads(open(json_path).read())
    if case == "no_truth":
        del entries[1]["truth"]
        open(json_path, "w").write(json.dumps(entries))
    elif case == "missing_frame":
        os.remove(tmp_path / "seq" / "color_2.png")
    else:
        open(json_path, "w").write(json.dumps({"path": "x"}))
    assert run_tool("videogen", [json_path, "2"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".avi")]


def test_max_len_must_be_a_positive_integer(tmp_path, repo_root):
    json_path = write_video_sec(tmp_path, ENTRIES[:1])
    run = subprocess.run([sys.executable, os.path.join(repo_root, "videogen.py"),
                          json_path, "0"], capture_output=True, text=True, cwd=repo_root)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "videogen.py: error: argument MAX_LEN: '0' must be a positive integer"]
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".avi")]
