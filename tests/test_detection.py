"""detect.py / coreLib.detection on tiny generated recordings.

Frames are one bright colour channel each: red frames are the action ``red``,
green frames ``green``, blue frames no-action. A DUMMY model whose weights are set
by hand sums each colour channel over the window into the logit of that colour's
class, so a window is labelled with the colour most of its L = 3 frames show.
That fixes every output by hand:
    offline (mean of the windows covering t): every frame right;
    online with --delay 0 (window ending at t): the first frame of each segment
    and the first frame after it are one frame late (latency 1);
    online by default (--delay L-1 = 2): offline's labels, given 2 frames later
    (latency 2).
"""

import dataclasses
import json
import os

import cv2
import numpy as np
import pytest

import channel_dummy

from conftest import run_detect
from coreLib import models
from coreLib.detection import config as detect_config, driver, rendering, sources
from coreLib.inference import model_spec, runners, stream_steps, window_runners
from coreLib.errors import ActrecogError

CLASSES = ("red", "green", "no-action")
SEQ_LEN, IMAGE_DIM = 3, 8
FRAME_SIZE = (12, 16)   # (H, W): frames are resized to 8x8
CHANNEL_OF = {"red": 0, "green": 1, "no-action": 2}
# The long TestDetection sequence: (action, frames) in order.
LONG_LAYOUT = (("no-action", 5), ("red", 8), ("no-action", 4), ("green", 8),
               ("no-action", 5))
LONG_FRAMES = 30


def layout_truth(layout) -> np.ndarray:
    return np.concatenate([[CLASSES.index(action)] * count for action, count in layout])


def write_frames(folder, layout, start_index: int = 0) -> None:
    """Constant-colour frames (plus a little texture) for each (action, count)."""
    os.makedirs(folder, exist_ok=True)
    index = start_index
    for action, count in layout:
        for _ in range(count):
            rgb = np.full(FRAME_SIZE + (3,), 10, np.uint8)
            rgb[..., CHANNEL_OF[action]] = 200
            rgb[0, 0] = (index % 7, index % 5, index % 3)
            assert cv2.imwrite(os.path.join(folder, f"color_{index}.png"), rgb[..., ::-1])
            index += 1


def item_xml(items) -> str:
    """TestDetection label file; items are (pos, len, action or None)."""
    body = ""
    for pos, length, action in items:
        tag = f"<action>{action}</action>" if action else ""
        body += f"  <_>\n    <pos>{pos}</pos>\n    <len>{length}</len>{tag}</_>\n"
    return f'<?xml version="1.0"?>\n<opencv_storage>\n<label>\n{body}</label>\n</opencv_storage>\n'


def layout_items(layout):
    items, pos = [], 0
    for action, count in layout:
        if action != "no-action":
            items.append((pos, count, action))
        pos += count
    return items


def make_source(root) -> str:
    """SRC/TestDetection/long (+ label file) and SRC/TestDetection/unlabelled."""
    split = root / "SRC" / "TestDetection"
    write_frames(str(split / "long"), LONG_LAYOUT)
    (split / "long.xml").write_text(item_xml(layout_items(LONG_LAYOUT)))
    write_frames(str(split / "unlabelled"), (("green", 4), ("no-action", 2)))
    return str(split)


def channel_vote_dummy(num_classes: int = 3, image_dim: int = IMAGE_DIM, seq_len=SEQ_LEN):
    """The hand-set DUMMY (tests/channel_dummy.py), steep: softmax ~one-hot."""
    return channel_dummy.channel_vote_dummy(seq_len, image_dim, num_classes, gain=60.0)


def write_model_dir(folder, model, classes=CLASSES, window_shape=None) -> str:
    """Weights and the run_config.json train.py writes beside them."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{model.name}.weights.h5")
    model.save_weights(path)
    shape = window_shape or list(model.input_shape[1:])
    with open(os.path.join(folder, "run_config.json"), "w") as handle:
        json.dump({"model_name": model.name, "window_shape": shape,
                   "num_classes": len(classes), "classes": list(classes)}, handle)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_model_dir(str(tmp_path_factory.mktemp("model")), channel_vote_dummy())


def test_offline_split_is_perfect_and_outputs_are_complete(tmp_path, weights, capsys):
    source = make_source(tmp_path)
    out = tmp_path / "out"
    assert run_detect(["DUMMY", weights, source, "--out", out, "--batch-size", "4"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "frame accuracy 100.00 %, F1@25 100.00"
    assert sorted(os.listdir(out)) == [
        "long.frames.csv", "long.segments.json", "summary.json", "timeline_long.png",
        "timeline_unlabelled.png", "unlabelled.frames.csv", "unlabelled.segments.json"]
    segments = json.loads((out / "long.segments.json").read_text())
    assert segments["mode"] == "offline" and segments["num_frames"] == LONG_FRAMES
    assert [(s["start"], s["end"], s["action"]) for s in segments["segments"]] == [
        (5, 12, "red"), (17, 24, "green")]
    assert all(0.6 < s["score"] <= 1.0 for s in segments["segments"])
    summary = json.loads((out / "summary.json").read_text())
    for key in ("frame_accuracy", "edit", "f1@10", "f1@25", "f1@50"):
        assert summary["overall"][key] == 100.0
    assert summary["num_frames"] == summary["decoded_frames"] == LONG_FRAMES + 6
    assert summary["sequences"]["unlabelled"]["metrics"] is None
    assert summary["classes"] == list(CLASSES) and summary["window_shape"] == [3, 8, 8, 3]
    rows = (out / "long.frames.csv").read_text().splitlines()
    assert rows[0] == "frame,label,score,red,green,no-action"
    assert len(rows) == 1 + LONG_FRAMES
    assert rows[6].split(",")[:2] == ["5", "red"]
    image = cv2.imread(str(out / "timeline_long.png"))
    assert image is not None and image.shape[1] > 600
    # The per-sequence table: both sequences and the overall row.
    assert [line.split()[0] for line in printed[1:4]] == ["long", "unlabelled", "overall"]


def test_online_window_model_is_one_frame_late(tmp_path, weights, capsys):
    source = make_source(tmp_path)
    out = tmp_path / "out"
    assert run_detect(["DUMMY", weights, os.path.join(source, "long"), "--out", out,
                       "--mode", "online", "--delay", "0"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    overall = summary["overall"]
    # Wrong: frames 0-1 (no full window: no-action, right), 5, 13, 17, 25.
    assert overall["frame_accuracy"] == pytest.approx(100 * 26 / 30, abs=1e-4)
    assert overall["f1@50"] == 100.0 and overall["edit"] == 100.0
    assert overall["latency_frames"] == 1.0 and overall["missed_segments"] == 0
    assert overall["false_starts_per_1000_frames"] == 0.0
    segments = json.loads((out / "long.segments.json").read_text())["segments"]
    assert [(s["start"], s["end"]) for s in segments] == [(6, 13), (18, 25)]
    assert capsys.readouterr().out.splitlines()[-1] == "frame accuracy 86.67 %, F1@25 100.00"


def test_online_default_delay_gives_offline_labels_l_minus_1_frames_later(
        tmp_path, weights, capsys):
    source = make_source(tmp_path)
    out, out_offline = tmp_path / "out", tmp_path / "offline"
    long_sequence = os.path.join(source, "long")
    assert run_detect(["DUMMY", weights, long_sequence, "--out", out, "--mode", "online"]) == 0
    assert capsys.readouterr().out.splitlines()[-2].endswith(
        f"frames/s, online, delay {SEQ_LEN - 1}); outputs in {out}")
    assert run_detect(["DUMMY", weights, long_sequence, "--out", out_offline]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["delay"] == SEQ_LEN - 1
    overall = summary["overall"]
    assert overall["frame_accuracy"] == 100.0 and overall["f1@50"] == 100.0
    # Each segment's first frame is right, but given only L-1 frames later.
    assert overall["latency_frames"] == SEQ_LEN - 1 and overall["missed_segments"] == 0
    online_csv = (out / "long.frames.csv").read_text().splitlines()
    offline_csv = (out_offline / "long.frames.csv").read_text().splitlines()
    # From frame L-1 on, the mean of the windows ending at t..t+L-1: offline's;
    # before it the no-action padding, which here is the truth (and offline's) too.
    assert len(online_csv) == LONG_FRAMES + 1 and online_csv == offline_csv


def test_online_delay_d_label_of_t_waits_for_frame_t_plus_d_only(tmp_path, weights):
    cut, delay = 14, 4
    original, other = write_original_and_changed(tmp_path, cut)
    before = detect_one(weights, original, "online", delay=delay)
    after = detect_one(weights, other, "online", delay=delay)
    known = cut - delay + 1   # frames 0 .. cut-D are labelled by frame cut
    np.testing.assert_array_equal(after.probabilities[:known], before.probabilities[:known])
    assert np.abs(after.probabilities[known:] - before.probabilities[known:]).max() > 0.1
    strict = detect_one(weights, original, "online")
    np.testing.assert_allclose(before.probabilities[:-delay], np.mean(
        [strict.probabilities[shift:LONG_FRAMES - delay + shift]
         for shift in range(delay + 1)], axis=0), atol=1e-6)
    with pytest.raises(ActrecogError, match="--delay 2: a fixed lag is for --mode online"):
        detect_one(weights, original, "offline", delay=2)


def config_for(weights, source, **kwargs):
    return detect_config.DetectConfig("DUMMY", weights, source, progress=False, batch_size=4,
                                      **kwargs)


def detect_one(weights, folder, mode, kind="window", **kwargs):
    """One sequence; online labels frame t at once (delay 0) unless told."""
    if mode == "online":
        kwargs.setdefault("delay", 0)
    config = config_for(weights, folder, mode=mode, **kwargs)
    manifest = model_spec.resolve_model_spec(weights)
    sequence = sources.discover_sources(folder, manifest)[0]
    model, _, runner = runners.load_runner(config.model_name, config.model_path, manifest, mode)
    if kind == "stream":
        runner = stream_steps.WindowStreamStep(model, manifest)
    return driver.detect_sequence(sequence, manifest, kind, runner, mode, config)


def write_original_and_changed(tmp_path, cut: int):
    """LONG_LAYOUT's frames, and a copy whose frames after ``cut`` change colour
    (green where red was, and so on); returns both folders."""
    truth = layout_truth(LONG_LAYOUT)
    changed = np.concatenate([truth[:cut + 1], np.array((1, 2, 0))[truth[cut + 1:]]])
    original, other = str(tmp_path / "original"), str(tmp_path / "changed")
    write_frames(original, LONG_LAYOUT)
    write_frames(other, [(CLASSES[label], 1) for label in changed])
    return original, other


@pytest.mark.parametrize("kind", ["window", "stream"])
def test_online_output_at_t_does_not_change_with_later_frames(tmp_path, weights, kind):
    cut = 14
    original, other = write_original_and_changed(tmp_path, cut)
    smoothing = {"smooth": 3, "min_frames": 2, "hysteresis": 0.05}
    before = detect_one(weights, original, "online", kind, **smoothing)
    after = detect_one(weights, other, "online", kind, **smoothing)
    np.testing.assert_array_equal(after.probabilities[:cut + 1], before.probabilities[:cut + 1])
    np.testing.assert_array_equal(after.labels[:cut + 1], before.labels[:cut + 1])
    np.testing.assert_array_equal(after.scores[:cut + 1], before.scores[:cut + 1])
    assert not np.array_equal(after.labels, before.labels)
    if kind == "window":
        # Offline, frame t sees the windows ending up to t+L-1: the cut's frame moves.
        offline_before = detect_one(weights, original, "offline")
        offline_after = detect_one(weights, other, "offline")
        np.testing.assert_array_equal(offline_after.probabilities[:cut - 1],
                                      offline_before.probabilities[:cut - 1])
        assert not np.allclose(offline_after.probabilities[cut],
                               offline_before.probabilities[cut])


def test_stream_step_gives_the_window_runners_online_probabilities(tmp_path, weights):
    folder = str(tmp_path / "seq")
    write_frames(folder, LONG_LAYOUT)
    window = detect_one(weights, folder, "online", "window")
    stream = detect_one(weights, folder, "online", "stream")
    np.testing.assert_allclose(stream.probabilities, window.probabilities, atol=1e-6)
    np.testing.assert_array_equal(stream.probabilities[:SEQ_LEN - 1],
                                  [[0, 0, 1]] * (SEQ_LEN - 1))
    np.testing.assert_array_equal(stream.labels, window.labels)


class FrameHistoryRunner:
    """A runner that keeps its state itself (the stream branch's StreamRunner
    protocol): the state is the last L frames seen, the output the window model's
    on them once L frames have come."""

    def __init__(self, model, manifest):
        self.inner = stream_steps.WindowStreamStep(model, manifest)
        self.state = self.inner.initial_state()
        self.set_calls = 0

    def reset(self):
        self.state = self.inner.initial_state()

    def set_state(self, state):
        self.set_calls += 1
        self.state = state

    def step(self, frames_in):
        probabilities, self.state = self.inner.step(frames_in, self.state)
        return probabilities


def test_a_stateful_runner_plugs_in_as_stream_step(tmp_path, weights, monkeypatch):
    folder = str(tmp_path / "seq")
    write_frames(folder, LONG_LAYOUT)
    window = detect_one(weights, folder, "online", "window")
    manifest = model_spec.resolve_model_spec(weights)
    built = []

    def stream_runner(model):
        built.append(FrameHistoryRunner(model, manifest))
        return built[-1]

    # A streaming model is one whose registry record has a stream runner.
    monkeypatch.setitem(models.MODEL_RECORDS, "DUMMY", dataclasses.replace(
        models.MODEL_RECORDS["DUMMY"], stream_runner=stream_runner))
    config = config_for(weights, folder, mode="online", delay=0)
    _, kind, runner = runners.load_runner(config.model_name, config.model_path,
                                          manifest, "online")
    assert kind == "stream"
    sequence = sources.discover_sources(folder, manifest)[0]
    streamed = driver.detect_sequence(sequence, manifest, kind, runner, "online", config)
    np.testing.assert_allclose(streamed.probabilities, window.probabilities, atol=1e-6)
    assert built[0].set_calls == 0


@pytest.mark.slow
def test_lrcn_shared_frame_features_give_the_whole_window_probabilities(tmp_path):
    chunk = 5   # 13 frames: chunks of 5, 5, 3, windows across chunk boundaries
    from coreLib.data import manifest as manifest_lib
    from coreLib.preprocessing import records
    import keras
    keras.utils.set_random_seed(1)
    image_dim = models.lrcn_min_image_dim()
    model = models.build_lrcn(SEQ_LEN, image_dim, 3, 3)
    manifest = manifest_lib.Manifest(CLASSES, SEQ_LEN, image_dim, 3, "color", "uint8",
                                     False, {}, "")
    folder = str(tmp_path / "seq")
    write_frames(folder, (("red", 4), ("green", 5), ("no-action", 4)))
    sequence = sources.SequenceSource("seq", folder, False, 13)

    def rows(runner, batch_size):
        chunks = sources.png_frame_chunks(sequence, manifest, chunk, 2)
        return window_runners.window_probabilities(chunks, manifest, runner, batch_size)

    # The model called eagerly on whole windows (no tracing: the test stays short).
    whole = rows(window_runners.WindowRunner(
        lambda pixels, rotations, flips: model(records.scale_pixels(pixels, "uint8"),
                                               training=False)), 4)
    shared_runner = window_runners.make_window_runner("LRCN", model, manifest)
    assert isinstance(shared_runner, window_runners.SharedFrameRunner)
    shared = rows(shared_runner, 3)
    assert whole.shape == (13, 3)
    np.testing.assert_array_equal(whole[:SEQ_LEN - 1], 0.0)
    np.testing.assert_allclose(shared, whole, atol=1e-6)
    assert np.ptp(whole[SEQ_LEN - 1:], axis=0).max() > 0   # windows differ


@pytest.mark.slow
def test_the_streaming_model_runs_frame_by_frame_online(tmp_path):
    import keras
    from coreLib.preprocessing import records
    from coreLib.models import streaming
    keras.utils.set_random_seed(2)
    model = streaming.build_causal_mobilenet(SEQ_LEN, 16, 3, 3)
    weights_path = write_model_dir(str(tmp_path / "model"), model)
    cut = 14
    original, other = write_original_and_changed(tmp_path, cut)
    config = detect_config.DetectConfig("CausalMobileNet", weights_path, original, mode="online",
                                        progress=False, batch_size=8, delay=0)
    manifest = model_spec.resolve_model_spec(weights_path)
    _, kind, runner = runners.load_runner(config.model_name, config.model_path,
                                          manifest, "online")
    assert kind == "stream"
    results = [driver.detect_sequence(sources.discover_sources(folder, manifest)[0],
                                         manifest, kind, runner, "online", config)
               for folder in (original, other)]
    before, after = results
    np.testing.assert_array_equal(after.probabilities[:cut + 1], before.probabilities[:cut + 1])
    # (Untrained, the outputs sit near 1/3: later frames move them a little.)
    assert np.abs(after.probabilities[cut + 1:] - before.probabilities[cut + 1:]).max() > 0
    assert before.decoded_frames == LONG_FRAMES
    # After L frames the stream has seen exactly the first window.
    sequence = sources.discover_sources(original, manifest)[0]
    first = next(sources.png_frame_chunks(sequence, manifest, SEQ_LEN, 1))
    window = model(records.scale_pixels(first[np.newaxis], "uint8"), training=False)
    np.testing.assert_allclose(before.probabilities[SEQ_LEN - 1], np.asarray(window)[0],
                               atol=1e-5)
    # Offline the same model runs on the windows covering each frame.
    _, offline_kind, _ = runners.load_runner(config.model_name, config.model_path,
                                             manifest, "offline")
    assert offline_kind == "window"


def test_each_frame_is_decoded_exactly_once(tmp_path, weights, counted_decodes):
    folder = str(tmp_path / "seq")
    write_frames(folder, LONG_LAYOUT)
    decodes = counted_decodes
    for mode in ("offline", "online"):
        decodes.clear()
        result = detect_one(weights, folder, mode)
        assert len(decodes) == len(set(decodes)) == LONG_FRAMES
        assert result.decoded_frames == LONG_FRAMES


def write_video(path, layout) -> int:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                             (FRAME_SIZE[1], FRAME_SIZE[0]))
    assert writer.isOpened()
    count = 0
    for action, frames_of_action in layout:
        for _ in range(frames_of_action):
            bgr = np.full(FRAME_SIZE + (3,), 10, np.uint8)
            bgr[..., 2 - CHANNEL_OF[action]] = 200
            writer.write(bgr)
            count += 1
    writer.release()
    return count


def test_video_file_runs_online_with_one_pass_and_a_labelled_video(tmp_path, weights):
    video_path = tmp_path / "clip.avi"
    count = write_video(video_path, LONG_LAYOUT)
    out = tmp_path / "out"
    assert run_detect(["DUMMY", weights, video_path, "--out", out, "--video"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "online" and summary["overall"] is None
    assert summary["num_frames"] == summary["decoded_frames"] == count == LONG_FRAMES
    segments = json.loads((out / "clip.segments.json").read_text())["segments"]
    # Online with the default lag of L-1 frames: every frame right.
    assert [(s["start"], s["end"], s["action"]) for s in segments] == [
        (5, 12, "red"), (17, 24, "green")]
    capture = cv2.VideoCapture(str(out / "clip.avi"))
    shown = 0
    while capture.read()[0]:
        shown += 1
    capture.release()
    assert shown == LONG_FRAMES
    assert not [name for name in os.listdir(out) if ".tmp-" in name]


def test_labelled_video_of_png_sequence(tmp_path, weights):
    folder = str(tmp_path / "SRC" / "TestDetection" / "short")
    write_frames(folder, (("red", 4), ("no-action", 3)))
    out = tmp_path / "out"
    assert run_detect(["DUMMY", weights, folder, "--out", out, "--video", "--fps", "5"]) == 0
    capture = cv2.VideoCapture(str(out / "short.avi"))
    ok, image = capture.read()
    assert ok and image.shape[1] == FRAME_SIZE[1]
    assert image.shape[0] > FRAME_SIZE[0] + rendering.TIMELINE_STRIP_HEIGHT
    capture.release()


def test_train_test_labels_take_the_folder_name(tmp_path, weights):
    sequence = tmp_path / "SRC" / "Test" / "subj" / "red"
    write_frames(str(sequence), (("no-action", 3), ("red", 5), ("no-action", 3)))
    (tmp_path / "SRC" / "Test" / "subj" / "red.xml").write_text(
        item_xml([(3, 5, None)]))
    manifest = model_spec.resolve_model_spec(weights)
    found = sources.discover_sources(str(tmp_path / "SRC" / "Test"), manifest)
    assert [source.name for source in found] == ["subj_red"]
    np.testing.assert_array_equal(found[0].truth, [2, 2, 2, 0, 0, 0, 0, 0, 2, 2, 2])


# ----------------------------------------------------------------------------- bad input

def _bad_source(tmp_path, problem):
    """Writes a source with one problem; returns (SOURCE, model path, expected text)."""
    split = tmp_path / "SRC" / "TestDetection"
    folder = split / "long"
    label = split / "long.xml"
    weights_path = None
    if problem != "empty folder":
        write_frames(str(folder), LONG_LAYOUT)
        label.write_text(item_xml(layout_items(LONG_LAYOUT)))
    if problem == "missing frame":
        os.remove(folder / "color_7.png")
        return str(split), weights_path, f"{folder / 'color_7.png'}: frame missing"
    if problem == "undecodable frame":
        (folder / "color_9.png").write_bytes(b"not a png")
        return str(split), weights_path, f"{folder / 'color_9.png'}: not a readable PNG"
    if problem == "unknown action":
        label.write_text(item_xml([(5, 8, "purple")]))
        return str(split), weights_path, f"{label}: item 0 names unknown action 'purple'"
    if problem == "overlapping items":
        label.write_text(item_xml([(5, 8, "red"), (10, 4, "green")]))
        return str(split), weights_path, f"{label}: items 0 (pos 5, len 8) and 1 (pos 10, len 4) overlap"
    if problem == "item without action":
        label.write_text(item_xml([(5, 8, "red"), (17, 8, None)]))
        return (str(split), weights_path,
                f"{label}: item 1 has no <action>; TestDetection label items name "
                f"their action: <_><pos>..</pos><len>..</len><action>NAME</action></_>")
    if problem == "video cannot be opened":
        broken = tmp_path / "broken.avi"
        broken.write_bytes(b"\x00" * 64)
        return str(broken), weights_path, f"{broken}: cannot be opened as a video"
    if problem == "weights for another class count":
        model_dir = tmp_path / "model4"
        weights_path = write_model_dir(str(model_dir), channel_vote_dummy(num_classes=4),
                                       classes=CLASSES)
        return str(split), weights_path, f"{weights_path}: weights for 4 classes"
    if problem == "weights for another window":
        model_dir = tmp_path / "model10"
        weights_path = write_model_dir(str(model_dir), channel_vote_dummy(image_dim=10),
                                       window_shape=[3, 8, 8, 3])
        return str(split), weights_path, f"{weights_path}: weights for another input shape"
    if problem == "empty folder":
        split.mkdir(parents=True)
        return str(split), weights_path, f"{split}: no sequence folders with color_<i>.png"
    if problem == "out inside the dataset":
        return str(split), weights_path, "--out"
    if problem == "delay offline":
        return str(split), weights_path, "--delay 3: a fixed lag is for --mode online"
    if problem == "online runner window offline":
        return (str(split), weights_path,
                "--online-runner window: how a streaming model runs online")
    if problem == "online runner unknown":
        return str(split), weights_path, "argument --online-runner: invalid choice: 'frames'"
    # Issue 21's rows.
    if problem == "item past the last frame":   # named no flag detect.py lacks
        label.write_text(item_xml([(25, 8, "red")]))
        return (str(split), weights_path, f"{label}: item 0 (pos 25, len 8) runs past the "
                f"last frame 29 (the label file and the frames disagree)")
    if problem in ("out in the dataset root", "out in a split of the dataset"):
        return str(folder), weights_path, "--out"
    if problem == "weights file missing":
        weights_path = str(tmp_path / "model" / "gone.weights.h5")
        return (str(split), weights_path,
                f"{weights_path}: MODEL_PATH not found (no such weights file)")
    if problem == "export folder without export.json":
        weights_path = str(tmp_path / "not-an-export")
        os.makedirs(weights_path)
        open(os.path.join(weights_path, "notes.txt"), "w").close()
        return (str(split), weights_path, f"{weights_path}: MODEL_PATH is a folder without "
                                          f"export.json or saved_model.pb")
    if problem == "manifest of other classes than the weights":
        from coreLib.data import manifest as manifest_lib
        dataset = tmp_path / "DataSet"
        dataset.mkdir()
        manifest_lib.write_manifest(str(dataset), manifest_lib.Manifest(
            ("blue", "red", "green", "no-action"), SEQ_LEN, IMAGE_DIM, 3, "color", "uint8",
            False, {}, str(tmp_path)))
        return (str(split), weights_path, f"--manifest {dataset}: its classes (blue, red, "
                f"green, no-action) differ from the model's (red, green, no-action, from")
    if problem == "video shorter than the window":
        short = tmp_path / "short.avi"
        write_video(short, (("red", SEQ_LEN - 1),))
        return str(short), weights_path, f"{short}: {SEQ_LEN - 1} frames, fewer than"
    if problem == "out holds other files":
        return str(split), weights_path, "holds files but no summary.json"
    raise AssertionError(problem)


BAD_INPUTS = ["missing frame", "undecodable frame", "unknown action", "overlapping items",
              "item without action", "video cannot be opened",
              "weights for another class count", "weights for another window",
              "empty folder", "out inside the dataset", "delay offline",
              "online runner window offline", "online runner unknown",
              "item past the last frame", "out in the dataset root",
              "out in a split of the dataset", "weights file missing",
              "export folder without export.json",
              "manifest of other classes than the weights", "video shorter than the window",
              "out holds other files"]
EXTRA_ARGS = {"delay offline": ["--mode", "offline", "--delay", "3"],
              "online runner window offline": ["--mode", "offline", "--online-runner",
                                               "window"],
              "online runner unknown": ["--mode", "online", "--online-runner", "frames"]}


def _out_folder(tmp_path, source, problem):
    """--out of a bad-input row (inside the dataset for those rows)."""
    src = tmp_path / "SRC"
    return {"out inside the dataset": os.path.join(source, "detections"),
            "out in the dataset root": str(src / "x"),
            "out in a split of the dataset": str(src / "TestDetection" / "x")}.get(
                problem, str(tmp_path / "out"))


@pytest.mark.parametrize("problem", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, weights, capsys, problem):
    source, weights_path, expected = _bad_source(tmp_path, problem)
    out = _out_folder(tmp_path, source, problem)
    if problem == "manifest of other classes than the weights":
        EXTRA_ARGS[problem] = ["--manifest", str(tmp_path / "DataSet")]
    if problem == "out holds other files":
        os.makedirs(out)
        open(os.path.join(out, "mine.txt"), "w").close()
    before = sorted(os.listdir(tmp_path))
    code = run_detect(["DUMMY", weights_path or weights, source, "--out", out]
                      + EXTRA_ARGS.get(problem, []))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("detect.py: error: "), lines
    assert expected in lines[0]
    assert "--clip-intervals" not in lines[0]
    # A refusal creates nothing, not even an empty --out (issue 21).
    assert sorted(os.listdir(tmp_path)) == before
    if problem == "out holds other files":
        assert os.listdir(out) == ["mine.txt"]
    else:
        assert not os.path.exists(out)
    assert captured.out == ""



def test_truncated_video_says_frames_read_against_the_container(tmp_path, weights, capsys):
    """Issue 21: a damaged file was detected as far as it read, without a word."""
    whole = tmp_path / "whole.avi"
    assert write_video(whole, LONG_LAYOUT) == LONG_FRAMES
    data = whole.read_bytes()
    clip = tmp_path / "clip.avi"
    clip.write_bytes(data[:int(len(data) * 0.7)])
    capture = cv2.VideoCapture(str(clip))
    readable = 0
    while capture.read()[0]:
        readable += 1
    capture.release()
    assert SEQ_LEN <= readable < LONG_FRAMES
    out = tmp_path / "out"
    assert run_detect(["DUMMY", weights, clip, "--out", out]) == 0
    warning = (f"{clip}: read {readable} frames, its container declares {LONG_FRAMES} "
               f"(truncated or damaged?); the {readable} read were detected")
    assert capsys.readouterr().err == f"detect.py: warning: {warning}\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["warnings"] == [warning] and summary["num_frames"] == readable


def test_out_over_an_older_run_is_replaced_as_one(tmp_path, weights, monkeypatch):
    """Issue 21: the older run's sequences stayed beside the new ones. --out is
    built beside and swapped in: the old run's files or the new run's, never both;
    the same through the two-rename fallback, whose parked old run a killed
    swap leaves is put back by the next run."""
    from coreLib import folder_swap
    source = make_source(tmp_path)
    out = tmp_path / "out"
    assert run_detect(["DUMMY", weights, source, "--out", out]) == 0
    both = sorted(os.listdir(out))
    assert both == ["long.frames.csv", "long.segments.json", "summary.json",
                    "timeline_long.png", "timeline_unlabelled.png",
                    "unlabelled.frames.csv", "unlabelled.segments.json"]
    assert run_detect(["DUMMY", weights, os.path.join(source, "long"), "--out", out]) == 0
    only_long = ["long.frames.csv", "long.segments.json", "summary.json",
                 "timeline_long.png"]
    assert sorted(os.listdir(out)) == only_long
    assert sorted(os.listdir(tmp_path)) == ["SRC", "out"]   # no staging left

    # A kill between the fallback's two renames: the old run parked, --out absent.
    parked = tmp_path / ".out.detect.old-killed"
    os.rename(out, parked)
    monkeypatch.setattr(folder_swap, "_exchange", lambda first, second: False)
    assert run_detect(["DUMMY", weights, source, "--out", out]) == 0
    assert sorted(os.listdir(out)) == both
    assert sorted(os.listdir(tmp_path)) == ["SRC", "out"]


def _folder_bytes(folder):
    return {name: open(os.path.join(folder, name), "rb").read()
            for name in sorted(os.listdir(folder))}


@pytest.mark.slow
def test_a_kill_while_the_new_run_is_written_leaves_the_old_run_whole(
        tmp_path, weights, script_runner):
    """SIGKILL while the new run's files are written beside --out (the staging
    folder there): --out is the older run byte for byte, and the next run
    sweeps the staging folder and replaces it as one."""
    import glob
    import signal
    import time
    source = tmp_path / "data" / "TestDetection"
    write_frames(str(source / "first"), (("red", 4), ("no-action", 3)))
    out = str(tmp_path / "out")
    args = ["DUMMY", weights, str(source), "--out", out, "--no-progress"]
    assert script_runner.run("detect.py", args).returncode == 0
    old = _folder_bytes(out)
    # A longer second sequence with a labelled video: its writing takes a while.
    write_frames(str(source / "second"), (("green", 300), ("no-action", 300)))
    staging = os.path.join(str(tmp_path), ".out.detect.tmp-*")
    for _ in range(5):
        child = script_runner.spawn("detect.py", args + ["--video"])
        while not script_runner.finished(child) and not glob.glob(staging):
            time.sleep(0.001)
        if script_runner.finished(child):   # it finished first: try again over it
            assert script_runner.wait(child).returncode == 0
            old = _folder_bytes(out)
            continue
        os.kill(child.pid, signal.SIGKILL)
        assert script_runner.wait(child).returncode == -signal.SIGKILL
        assert _folder_bytes(out) == old
        break
    else:
        pytest.fail("detect.py finished each time before the staging folder was seen")
    assert glob.glob(staging)
    assert script_runner.run("detect.py", args).returncode == 0
    assert not glob.glob(staging)
    assert sorted(os.listdir(out)) == sorted(
        [f"{sequence}{suffix}" for sequence in ("first", "second")
         for suffix in (".frames.csv", ".segments.json")]
        + ["timeline_first.png", "timeline_second.png", "summary.json"])


def test_truth_of_a_synthetic_testdetection_sequence(tmp_path):
    from coreLib.data import manifest as manifest_lib
    from coreLib.synthetic import generator, detection
    config = generator.SyntheticConfig(width=32, height=24, detection_plan=(("connie", 80, 4),))
    plan = detection.plan_detection(config)[0]
    detection.write_detection_sequence(str(tmp_path), config, plan)
    classes = tuple(config.actions) + (manifest_lib.NO_ACTION,)
    manifest = manifest_lib.Manifest(classes, SEQ_LEN, IMAGE_DIM, 1, "depth", "uint16",
                                     False, {}, "")
    (source,) = sources.discover_sources(str(tmp_path / "TestDetection"), manifest)
    assert (source.name, source.num_frames) == ("connie", 80)
    expected = np.full(80, len(classes) - 1)
    for (pos, length), action in zip(plan.intervals, plan.actions):
        expected[pos:pos + length] = classes.index(action)
    np.testing.assert_array_equal(source.truth, expected)
