"""Live detection: detect.py on a stream (``-``), the LiveDetector API, events.

One synthetic TestDetection sequence (60 depth frames, 48x40) and one depth
CausalMobileNet whose labels follow the frames (tests/live_model.py) serve every
test. The reference is ``detect.py --mode online --events`` on the sequence's
folder; a live run over the same frames must give the same events, byte for
byte, and the same per-frame CSV - with the stream step and with
``--online-runner window``.
"""

import io
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import live_model
from conftest import run_detect
from coreLib.data import frames
from coreLib.detection import events as events_lib, fusion, outputs, segments
from coreLib.detection.live import LiveDetector
from coreLib.synthetic import detection, generator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = generator.SyntheticConfig(
    train_subjects=("LN",), test_subjects=("alvin",), actions=live_model.CLASSES[:-1],
    width=48, height=40, reps=1, min_len=6, max_len=10, min_gap=2, max_gap=4,
    frames_per_sequence=16, detection_sequences=1, detection_frames=60,
    detection_performances=4)
RAW_FORMAT = "gray16le:48x40"
DELAY = live_model.SEQ_LEN - 1
# The Keras stream step: these tests pin live == online, whichever runtime; the
# LiteRT conversion (tens of seconds) is tested once, apart.
RUNTIME = "keras"
# A watchdog: no live run here takes a fraction of this.
PROCESS_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def live_case(tmp_path_factory):
    """The sequence folder, its depth frames and the model's weights."""
    root = str(tmp_path_factory.mktemp("live"))
    plan = detection.plan_detection(CONFIG)[0]
    detection.write_detection_sequence(root, CONFIG, plan)
    folder = os.path.join(root, "TestDetection", plan.name)
    depth = np.stack([frames.read_frame(folder, "depth", index)
                      for index in range(plan.num_frames)])            # (N, H, W, 1)
    resized = np.stack([frames.resize_frame(frame, live_model.IMAGE_DIM) for frame in depth])
    scaled = np.minimum(resized.astype(np.float32), 4095) / np.float32(4095)
    windows = np.moveaxis(np.lib.stride_tricks.sliding_window_view(
        scaled, live_model.SEQ_LEN, axis=0), -1, 1)
    model = live_model.build_spread_model(np.ascontiguousarray(windows))
    weights = live_model.write_model_dir(os.path.join(root, "model"), model)
    return {"root": root, "folder": folder, "depth": depth, "weights": weights}


def _detect_online_folder(live_case, out: str, *options):
    """detect.py ``--mode online --events`` on the case's folder into ``out`` with
    ``options``: ``(event lines, the frame CSV's bytes)``."""
    events_path = os.path.join(out, "events.jsonl")
    code = run_detect(["CausalMobileNet", live_case["weights"], live_case["folder"],
                       "--mode", "online", "--events", events_path, "--out", out, *options])
    assert code == 0
    name = os.path.basename(live_case["folder"])
    with open(events_path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    with open(os.path.join(out, f"{name}.frames.csv"), "rb") as handle:
        return lines, handle.read()


@pytest.fixture(scope="module")
def online(live_case, tmp_path_factory):
    """``--mode online --events`` on the folder: events (JSON lines), the frame CSV."""
    out = str(tmp_path_factory.mktemp("online"))
    lines, csv_bytes = _detect_online_folder(live_case, out, "--stream-runtime", RUNTIME)
    name = os.path.basename(live_case["folder"])
    with open(os.path.join(out, f"{name}.segments.json"), encoding="utf-8") as handle:
        segments_doc = json.load(handle)
    # The reference has something to say: several segments, starts and ends.
    assert len(segments_doc["segments"]) >= 3
    assert len(lines) == 2 * len(segments_doc["segments"])
    return {"lines": lines, "csv": csv_bytes, "segments": segments_doc["segments"]}


def _watchdog(*processes):
    timer = threading.Timer(PROCESS_TIMEOUT_S, lambda: [p.kill() for p in processes])
    timer.daemon = True
    timer.start()
    return timer


def _live_processes(live_case, out, producer_args):
    producer = subprocess.Popen(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "feed_frames.py"),
         live_case["folder"], *producer_args], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    detector = subprocess.Popen(
        [sys.executable, os.path.join(REPO_ROOT, "detect.py"), "CausalMobileNet",
         live_case["weights"], "-", "--raw-format", RAW_FORMAT, "--events", "-",
         "--out", out, "--no-progress", "--stream-runtime", RUNTIME],
        stdin=producer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=REPO_ROOT)
    producer.stdout.close()     # the detector holds the pipe's read end
    return producer, detector


def _csv(out):
    with open(os.path.join(out, "stdin.frames.csv"), "rb") as handle:
        return handle.read()


@pytest.mark.slow
def test_live_stdin_equals_online_and_events_come_before_the_stream_ends(
        live_case, online, tmp_path):
    out = str(tmp_path / "out")
    producer, detector = _live_processes(live_case, out, ["--fps", "120", "--hold-last"])
    timer = _watchdog(producer, detector)
    try:
        lines = []
        first_end = next(index for index, line in enumerate(online["lines"])
                         if json.loads(line)["event"] == "end")
        while len(lines) <= first_end:
            lines.append(detector.stdout.readline().rstrip("\n"))
        # The first segment has started and ended while the producer still holds
        # the last frame back.
        assert producer.poll() is None
        producer.stdin.write(b"go\n")
        producer.stdin.close()
        lines += detector.stdout.read().splitlines()
        assert detector.wait() == 0, detector.stderr.read()
        assert producer.wait() == 0
    finally:
        timer.cancel()
    assert lines == online["lines"]
    assert _csv(out) == online["csv"]
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    live = summary["live"]
    assert {key: live[key] for key in ("frames", "events", "dropped_frames", "stopped_by")} \
        == {"frames": 60, "events": len(lines), "dropped_frames": 0,
            "stopped_by": "end of stream"}
    assert 0 < live["latency_ms_p50"] <= live["latency_ms_p99"] <= live["latency_ms_max"]
    assert summary["source"] == "-" and summary["delay"] == DELAY


@pytest.mark.slow
def test_sigint_mid_stream_leaves_complete_outputs(live_case, online, tmp_path):
    out = str(tmp_path / "out")
    sent = 40
    producer, detector = _live_processes(live_case, out,
                                         ["--fps", "0", "--hold-after", str(sent)])
    timer = _watchdog(producer, detector)
    try:
        first = json.loads(detector.stdout.readline())     # it is running
        assert first == json.loads(online["lines"][0])
        detector.send_signal(signal.SIGINT)
        rest = detector.stdout.read().splitlines()
        assert detector.wait() == 0, detector.stderr.read()
    finally:
        producer.kill()
        producer.wait()
        timer.cancel()
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    seen = summary["live"]["frames"]
    assert summary["live"]["stopped_by"] == "SIGINT" and 0 < seen <= sent
    assert sorted(os.listdir(out)) == ["stdin.frames.csv", "stdin.segments.json",
                                       "summary.json", "timeline_stdin.png"]
    rows = _csv(out).decode().splitlines()
    assert len(rows) == 1 + seen
    # Frames whose lag was complete before the stop carry the labels of the
    # whole recording's online run.
    reference = online["csv"].decode().splitlines()
    assert rows[:1 + seen - DELAY] == reference[:1 + seen - DELAY]
    with open(os.path.join(out, "stdin.segments.json"), encoding="utf-8") as handle:
        segments_doc = json.load(handle)
    assert segments_doc["num_frames"] == seen
    ends = [json.loads(line) for line in [json.dumps(first)] + rest]
    ends = [(e["start_frame"], e["frame"], e["action"], e["score"])
            for e in ends if e["event"] == "end"]
    assert ends == [(s["start"], s["end"], s["action"], s["score"])
                    for s in segments_doc["segments"]]


@pytest.mark.slow
def test_a_second_signal_ends_the_run_at_once_leaving_no_half_written_file(
        live_case, online, tmp_path):
    out = str(tmp_path / "out")
    producer, detector = _live_processes(live_case, out, ["--fps", "0", "--hold-after", "40"])
    timer = _watchdog(producer, detector)
    try:
        detector.stdout.readline()                  # it is running
        detector.send_signal(signal.SIGTERM)
        # (Two signals sent at once may reach it as one: the second goes once the
        # first has been taken, while the outputs are being built.)
        while "SIGTERM: stopping" not in detector.stderr.readline():
            pass
        detector.send_signal(signal.SIGTERM)
        code = detector.wait()
    finally:
        producer.kill()
        producer.wait()
        timer.cancel()
    # Either the second signal came while the outputs were being built (exit at
    # once: nothing of this run left, not even its staging folder) or after they
    # were swapped in whole (exit 0, complete).
    assert os.listdir(tmp_path) in ([], ["out"])
    if code == 128 + signal.SIGTERM:
        assert not os.path.exists(out)
    else:
        assert code == 0
        assert sorted(os.listdir(out)) == ["stdin.frames.csv", "stdin.segments.json",
                                           "summary.json", "timeline_stdin.png"]


def test_the_api_gives_the_cli_events(live_case, online):
    detector = LiveDetector.open(live_case["weights"], stream_runtime=RUNTIME)
    found = []
    for depth in live_case["depth"]:
        found += detector.push(depth[:, :, 0])           # (H, W) uint16 millimetres
    result = detector.close()
    found += result.events
    assert [json.dumps(event) for event in found] == online["lines"]
    assert result.summary["num_frames"] == 60 and result.summary["source"] == "live"
    assert result.detection.source.name == "live"
    assert result.detection.segments == online["segments"]


def test_timestamps_give_the_events_times(live_case, online):
    detector = LiveDetector.open(live_case["weights"], stream_runtime=RUNTIME)
    found = []
    for index, depth in enumerate(live_case["depth"]):
        found += detector.push(depth, timestamp=100.0 + 0.25 * index)
    found += detector.close().events
    expected = [json.loads(line) for line in online["lines"]]
    assert [event["time_s"] for event in found] == [0.25 * event["frame"]
                                                     for event in expected]
    for event in expected:
        event.pop("time_s")
    assert [{k: v for k, v in event.items() if k != "time_s"} for event in found] == expected


@pytest.fixture(scope="module")
def online_window(live_case, tmp_path_factory):
    """``--mode online --online-runner window --events`` on the folder: the
    streaming model's window model on the window ending at each frame."""
    out = str(tmp_path_factory.mktemp("online-window"))
    lines, csv_bytes = _detect_online_folder(live_case, out, "--online-runner", "window")
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    return {"lines": lines, "csv": csv_bytes, "summary": summary}


def _detect_probabilities(live_case, out, **options) -> np.ndarray:
    """``(N, K)`` per-frame probabilities of detect's driver on the folder."""
    from coreLib.detection import driver
    from coreLib.detection.config import DetectConfig
    config = DetectConfig("CausalMobileNet", live_case["weights"], live_case["folder"],
                          out_dir=out, progress=False, stream_runtime=RUNTIME, **options)
    (detection,) = driver.detect(config).sequences
    return detection.probabilities


def test_online_window_runner_gives_offline_probabilities_l_minus_1_frames_later(
        live_case, online_window, tmp_path):
    window = _detect_probabilities(live_case, str(tmp_path / "window"), mode="online",
                                   online_runner="window")
    offline = _detect_probabilities(live_case, str(tmp_path / "offline"), mode="offline")
    stream = _detect_probabilities(live_case, str(tmp_path / "stream"), mode="online")
    assert window.shape == offline.shape == (60, len(live_model.CLASSES))
    # Frame t (t >= L-1), labelled at t+L-1: the mean of the windows ending at
    # t..t+L-1, offline's (frames before L-1 mix in the no-action padding).
    np.testing.assert_allclose(window[DELAY:], offline[DELAY:], rtol=0, atol=1e-7)
    # The stream step also holds frames from before each window: other outputs.
    assert np.abs(stream - window).max() > 1e-2
    assert online_window["summary"]["runner"] == "window"
    assert online_window["summary"]["delay"] == DELAY
    with open(os.path.join(str(tmp_path / "window"), os.path.basename(live_case["folder"])
                           + ".frames.csv"), "rb") as handle:
        assert handle.read() == online_window["csv"]


def test_the_api_with_the_window_runner_gives_the_cli_events(live_case, online_window):
    detector = LiveDetector.open(live_case["weights"], online_runner="window")
    assert detector.kind == "window"
    found = []
    for depth in live_case["depth"]:
        found += detector.push(depth[:, :, 0])
    result = detector.close()
    found += result.events
    assert [json.dumps(event) for event in found] == online_window["lines"]
    assert result.summary["runner"] == "window"
    assert outputs.frames_csv(result.detection, live_model.CLASSES) == online_window["csv"]


def _frame_indices(feed):
    """Every frame index a FrameFeed gives until its stream ends."""
    taken = []
    while True:
        try:
            taken.append(feed.get(1.0)[0])
        except StopIteration:
            return taken


def test_realtime_feed_drops_the_oldest_frames():
    from coreLib.detection import live_sources
    feed = live_sources.FrameFeed(((index, None) for index in range(10)), realtime=True)
    feed.thread.join()      # everything has arrived while nobody took a frame
    assert _frame_indices(feed) == [8, 9] and feed.dropped == 8
    waiting = live_sources.FrameFeed(((index, None) for index in range(10)), realtime=False)
    assert _frame_indices(waiting) == list(range(10)) and waiting.dropped == 0


def test_a_window_model_runs_live_one_window_per_frame(tmp_path):
    # The hand-set DUMMY of test_detection (colour frames, L = 3): a window model
    # has no stream step; live it runs the window ending at each frame (batch 1),
    # --mode online runs the same windows in batches: the same labels, the
    # probabilities to float rounding.
    import test_detection as td
    from coreLib.detection import driver, sources
    from coreLib.detection.config import DetectConfig
    from coreLib.inference import model_spec, runners
    folder = str(tmp_path / "seq")
    td.write_frames(folder, td.LONG_LAYOUT)
    weights = td.write_model_dir(str(tmp_path / "model"), td.channel_vote_dummy())
    config = DetectConfig("DUMMY", weights, folder, mode="online", delay=0, progress=False,
                          batch_size=4)
    manifest = model_spec.resolve_model_spec(weights)
    _, kind, runner = runners.load_runner("DUMMY", weights, manifest, "online")
    online = driver.detect_sequence(sources.discover_sources(folder, manifest)[0], manifest,
                                    kind, runner, "online", config)
    detector = LiveDetector.open(weights, delay=0)
    assert detector.kind == "window"
    for index in range(td.LONG_FRAMES):
        detector.push(frames.read_frame(folder, "color", index))     # (H, W, 3) uint8 RGB
    live = detector.close().detection
    np.testing.assert_array_equal(live.labels, online.labels)
    np.testing.assert_allclose(live.probabilities, online.probabilities, atol=1e-6)
    assert live.segments == online.segments


def test_frame_labeler_is_online_mode_exactly():
    # Random outputs, every lag, smoothing, minimum duration and hysteresis: the
    # frame-by-frame labels and smoothed rows are bit-identical to the batch ones.
    rng = np.random.default_rng(0)
    for _ in range(60):
        count, classes = int(rng.integers(1, 40)), int(rng.integers(2, 5))
        rows = rng.dirichlet(np.ones(classes) * 0.5, count).astype(np.float32)
        delay = int(rng.integers(0, 6))
        smoothing = segments.SmoothingConfig(int(rng.integers(1, 5)), int(rng.integers(1, 4)),
                                             float(rng.choice([0.0, 0.2])), True)
        smoothed, labels, _ = segments.label_frames(
            fusion.delayed_probabilities(rows, delay), smoothing, classes - 1)
        labeler = events_lib.FrameLabeler(classes, delay, smoothing, classes - 1)
        decided = [item for row in rows for item in labeler.push(row)] + labeler.finish()
        assert [item[0] for item in decided] == list(range(count))
        np.testing.assert_array_equal([item[1] for item in decided], labels)
        np.testing.assert_array_equal(np.stack([item[2] for item in decided]), smoothed)


def _stdin(monkeypatch, data: bytes):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_a_partial_last_frame_is_dropped_with_a_warning(live_case, tmp_path, monkeypatch,
                                                        capsys):
    frames_bytes = live_case["depth"][:10].astype("<u2").tobytes()
    _stdin(monkeypatch, frames_bytes + b"\x01" * 100)
    out = str(tmp_path / "out")
    assert run_detect(["CausalMobileNet", live_case["weights"], "-", "--raw-format",
                       RAW_FORMAT, "--out", out, "--stream-runtime", RUNTIME]) == 0
    err = capsys.readouterr().err
    assert "standard input ended inside a frame: 100 of 3840 bytes dropped; 10 " in err
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as handle:
        assert json.load(handle)["num_frames"] == 10


LIVE_BAD_INPUTS = {
    "raw format that does not parse": (["-", "--raw-format", "gray16le:48"],
                                       "--raw-format gray16le:48: expected FMT:WxH"),
    "raw format of another modality": (["-", "--raw-format", "bgr24:48x40"],
                                       "--raw-format bgr24:48x40: bgr24 frames do not fit "
                                       "the model's depth frames (use gray16le)"),
    "stdin without a raw format": (["-"], "-: raw frames on standard input need "
                                          "--raw-format"),
    "camera for a depth model": (["cam:0"], "cam:0: a camera gives colour frames"),
    "no complete frame": (["-", "--raw-format", RAW_FORMAT],
                          "-: no complete frame arrived"),
    "events offline": ([None, "--mode", "offline", "--events", "-"],
                       "--events: events are decided online"),
    "raw format for a folder": ([None, "--raw-format", RAW_FORMAT],
                                "--raw-format: for SOURCE -"),
}


@pytest.mark.parametrize("problem", sorted(LIVE_BAD_INPUTS))
def test_live_bad_input_exits_2_with_one_line_and_no_output(live_case, tmp_path, monkeypatch,
                                                            capsys, problem):
    args, expected = LIVE_BAD_INPUTS[problem]
    args = [live_case["folder"] if arg is None else arg for arg in args]
    _stdin(monkeypatch, b"\x00" * 1000)     # less than one 48x40 gray16 frame
    out = str(tmp_path / "out")
    code = run_detect(["CausalMobileNet", live_case["weights"], *args, "--out", out,
                       "--stream-runtime", RUNTIME])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("detect.py: error: "), lines
    assert expected in lines[0], lines[0]
    assert not os.path.exists(out)
    assert captured.out == ""


def test_a_camera_that_cannot_be_opened(tmp_path, capsys):
    import channel_dummy
    model = channel_dummy.channel_vote_dummy(3, 8, 3, gain=60.0)
    folder = tmp_path / "model"
    folder.mkdir()
    weights = str(folder / "DUMMY.weights.h5")
    model.save_weights(weights)
    (folder / "run_config.json").write_text(json.dumps(
        {"model_name": "DUMMY", "window_shape": [3, 8, 8, 3], "num_classes": 3,
         "classes": ["red", "green", "no-action"]}))
    out = str(tmp_path / "out")
    code = run_detect(["DUMMY", weights, "cam:97", "--out", out])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and lines == ["detect.py: error: cam:97: the camera cannot be opened"]
    assert not os.path.exists(out)


@pytest.fixture(scope="module")
def litert_online(live_case, tmp_path_factory):
    """``--mode online --events`` with the default runtime: the stream step
    converted to LiteRT once and cached beside the weights."""
    out = str(tmp_path_factory.mktemp("online-litert"))
    events_path = os.path.join(out, "events.jsonl")
    model_dir = os.path.dirname(live_case["weights"])
    assert not [name for name in os.listdir(model_dir) if name.startswith(".litert-")]
    code = run_detect(["CausalMobileNet", live_case["weights"], live_case["folder"],
                       "--mode", "online", "--events", events_path, "--out", out])
    assert code == 0
    with open(events_path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    return {"lines": lines, "out": out}


@pytest.mark.slow
def test_weights_run_online_through_the_cached_litert_step(live_case, online, litert_online,
                                                           capsys):
    from coreLib.export import litert_cache
    model_dir = os.path.dirname(live_case["weights"])
    (cached,) = [name for name in os.listdir(model_dir) if name.startswith(".litert-")]
    assert cached == os.path.basename(litert_cache.cache_dir(live_case["weights"]))
    assert sorted(os.listdir(os.path.join(model_dir, cached))) == [
        "CausalMobileNet.tflite", "CausalMobileNet_stream.tflite", "export.json"]
    with open(os.path.join(litert_online["out"], "summary.json"), encoding="utf-8") as handle:
        assert json.load(handle)["runner"] == "stream"
    # Float32 LiteRT against the Keras step: the same segments, scores within 1e-4.
    litert_events = [json.loads(line) for line in litert_online["lines"]]
    keras_events = [json.loads(line) for line in online["lines"]]
    assert [{k: v for k, v in e.items() if k != "score"} for e in litert_events] == \
        [{k: v for k, v in e.items() if k != "score"} for e in keras_events]
    np.testing.assert_allclose([e["score"] for e in litert_events],
                               [e["score"] for e in keras_events], atol=1e-4)
    # Opened again: the cached file, no second conversion.
    capsys.readouterr()
    detector = LiveDetector.open(live_case["weights"])
    assert "converting" not in capsys.readouterr().err
    assert detector.step.model.path.startswith(os.path.join(model_dir, cached))


def _readme_api_example() -> str:
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    block = text.split("<!-- live api example -->", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_the_wheel_runs_the_readme_example_outside_the_repository(live_case, litert_online,
                                                                  tmp_path):
    # The wheel, built from the project's files (pyproject.toml) by pip; installed
    # into a folder of its own; the README's example run from a folder outside
    # the repository, with only that folder on the path for coreLib.
    example = _readme_api_example()
    assert len([line for line in example.splitlines() if line.strip()]) <= 10
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        with open(os.path.join(REPO_ROOT, name), "rb") as handle:
            (source / name).write_bytes(handle.read())
    import shutil
    shutil.copytree(os.path.join(REPO_ROOT, "coreLib"), source / "coreLib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", ".", "--no-deps", "--no-build-isolation", "-w",
                          str(tmp_path / "dist")], cwd=source, check=True)
    (wheel,) = (tmp_path / "dist").iterdir()
    subprocess.run(pip + ["install", "--no-deps", "--target", str(tmp_path / "site"),
                          str(wheel)], check=True)
    app = tmp_path / "app"
    app.mkdir()
    (app / "example.py").write_text(example)
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "site"),
                   "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(
        [sys.executable, "-s", "example.py", live_case["weights"],
         live_case["folder"]], cwd=app, env=environment, capture_output=True, text=True,
        timeout=PROCESS_TIMEOUT_S)
    assert completed.returncode == 0, completed.stderr[-2000:]
    # The example opens the weights as applications do: the LiteRT stream step.
    assert completed.stdout.splitlines() == litert_online["lines"]
    from importlib import metadata
    requirements = [line.strip() for line in open(os.path.join(REPO_ROOT, "requirements.txt"))
                    if line.strip() and not line.startswith("#")]
    wheel_metadata = metadata.PathDistribution(
        next((tmp_path / "site").glob("*.dist-info"))).requires
    assert wheel_metadata == requirements
