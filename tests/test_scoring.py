"""score.py / coreLib.evaluation.scoring on a tiny generated Test split.

Three sequences of constant-colour frames (red, green, blue), one per class; a
DUMMY model whose weights are set by hand copies each frame through its Conv3D and
sums each colour channel into the logit of that colour's class, so it predicts
every window right by construction. Windows whose JSON class is changed on purpose
give known mistakes.
"""

import dataclasses
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import channel_dummy

from conftest import run_tool
from coreLib import models
from coreLib.data import frames, manifest as manifest_lib
from coreLib.evaluation import scoring
from coreLib.data import window_lists
from coreLib.inference import forward, frame_reader
from coreLib.preprocessing import records
from coreLib.errors import ActrecogError

CLASSES = ("red", "green", "no-action")
SEQ_LEN = 3
IMAGE_DIM = 8
# (colour channel in RGB order, frame count, frame size (h, w))
SEQUENCES = {"red": (0, 6, (12, 16)), "green": (1, 5, (10, 20)), "blue": (2, 4, (9, 9))}
SEQUENCE_CLASS = {"red": "red", "green": "green", "blue": "no-action"}



def iterate_windows(windows, manifest, workers: int = 2):
    """Every window's stored pixels, one at a time (see frame_reader.iterate_batches).

    Yields:
        ``(number, pixels, rotation, flip)``: the window's position in the JSON,
        ``(L, D, D, C)`` array of the manifest's dtype, and its augmentation.
    """
    for numbers, pixels, rotations, flips in frame_reader.iterate_batches(
            windows, manifest, max(1, manifest.seq_len), workers):
        for row, number in enumerate(numbers):
            yield int(number), pixels[row], int(rotations[row]), int(flips[row])

def write_sequence(folder, channel: int, count: int, size) -> None:
    os.makedirs(folder, exist_ok=True)
    for index in range(count):
        rgb = np.zeros(size + (3,), np.uint8)
        rgb[..., channel] = 100 + 20 * index      # frames differ within a sequence
        rgb[0, 0] = (index, 2 * index, 3 * index)  # and are not constant
        cv2.imwrite(os.path.join(folder, f"color_{index}.png"), rgb[..., ::-1])


def make_dataset(root, mislabel=()) -> str:
    """Writes frames, dataset.json and a Test JSON; returns the JSON path.

    Args:
        mislabel: window numbers whose JSON class is changed to the next class.
    """
    dataset_dir = root / "DataSet"
    dataset_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (channel, count, size) in SEQUENCES.items():
        folder = str(root / "SRC" / "Test" / "subj" / name)
        write_sequence(folder, channel, count, size)
        for stop in range(SEQ_LEN - 1, count):
            entries.append({"path": folder, "start": stop - SEQ_LEN + 1, "stop": stop,
                            "class": SEQUENCE_CLASS[name], "rotation": 0, "flip": 0})
    # Interleave sequences so the JSON order differs from the reading order.
    entries = entries[::2] + entries[1::2]
    for number in mislabel:
        current = CLASSES.index(entries[number]["class"])
        entries[number]["class"] = CLASSES[(current + 1) % len(CLASSES)]
    test = manifest_lib.SplitInfo("Test", "test.json", 3, len(entries), ("subj",))
    manifest = manifest_lib.Manifest(CLASSES, SEQ_LEN, IMAGE_DIM, 3, "color", "uint8",
                                     False, {"Test": test}, str(root / "SRC"))
    manifest_lib.write_manifest(str(dataset_dir), manifest)
    json_path = dataset_dir / manifest_lib.split_json_name("Test", 3, SEQ_LEN)
    json_path.write_text(json.dumps(entries))
    return str(json_path)


def perfect_dummy(num_classes: int = 3, image_dim: int = IMAGE_DIM):
    """The hand-set DUMMY (tests/channel_dummy.py): the brightest colour channel wins."""
    return channel_dummy.channel_vote_dummy(SEQ_LEN, image_dim, num_classes, gain=50.0)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    perfect_dummy().save_weights(str(folder / "DUMMY.weights.h5"))
    perfect_dummy(num_classes=4).save_weights(str(folder / "classes4.weights.h5"))
    perfect_dummy(image_dim=10).save_weights(str(folder / "dim10.weights.h5"))
    models.build_model("LRCN", SEQ_LEN, 48, 3, 3).save_weights(str(folder / "LRCN.weights.h5"))
    return folder


def results_files(json_path):
    folder = os.path.join(os.path.dirname(json_path), scoring.RESULTS_FOLDER)
    if not os.path.isdir(folder):
        return []
    return sorted(os.listdir(folder))


def test_perfect_weights_score_100_and_results_follow_json_order(tmp_path, weights_dir,
                                                                  capsys):
    json_path = make_dataset(tmp_path)
    code = run_tool("score", ["DUMMY", str(weights_dir / "DUMMY.weights.h5"), json_path,
                      "--batch-size", "4"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == "Test data Prediction Accuracy [F1 accuracy]: 100.0"
    assert "Macro F1: 100.00" in out
    assert results_files(json_path) == ["confusion_DUMMY.png", "metrics_DUMMY.json",
                                        "video_sec_DUMMY.json"]
    entries = json.loads(open(json_path).read())
    results_dir = os.path.join(os.path.dirname(json_path), "Results")
    video_sec = json.load(open(os.path.join(results_dir, "video_sec_DUMMY.json")))
    assert len(video_sec) == len(entries) == 4 + 3 + 2
    for entry, result in zip(entries, video_sec):
        assert set(result) == {"path", "truth", "prediction", "score"}
        assert result["path"] == os.path.join(entry["path"], f"color_{entry['start']}.png")
        assert result["truth"] == entry["class"] == result["prediction"]
        assert 0.5 < result["score"] <= 1.0
    metrics = json.load(open(os.path.join(results_dir, "metrics_DUMMY.json")))
    assert metrics["num_windows"] == 9
    assert metrics["confusion_matrix"] == [[4, 0, 0], [0, 3, 0], [0, 0, 2]]
    assert metrics["weights_file"] == str(weights_dir / "DUMMY.weights.h5")
    image = cv2.imread(os.path.join(results_dir, "confusion_DUMMY.png"))
    assert image is not None and image.shape[0] > 100


def test_metrics_and_table_match_sklearn(tmp_path, weights_dir, capsys):
    from sklearn import metrics as sk
    json_path = make_dataset(tmp_path, mislabel=(0, 1, 5))
    code = run_tool("score", ["DUMMY", str(weights_dir / "DUMMY.weights.h5"), json_path])
    out = capsys.readouterr().out
    assert code == 0
    results_dir = os.path.join(os.path.dirname(json_path), "Results")
    video_sec = json.load(open(os.path.join(results_dir, "video_sec_DUMMY.json")))
    truth = [CLASSES.index(r["truth"]) for r in video_sec]
    prediction = [CLASSES.index(r["prediction"]) for r in video_sec]
    assert sum(t != p for t, p in zip(truth, prediction)) == 3
    micro = sk.f1_score(truth, prediction, average="micro")
    assert out.splitlines()[0] == f"Test data Prediction Accuracy [F1 accuracy]: {micro * 100}"
    table = sk.classification_report(truth, prediction, labels=[0, 1, 2],
                                     target_names=list(CLASSES), digits=4, zero_division=0)
    assert table.rstrip("\n") in out
    metrics = json.load(open(os.path.join(results_dir, "metrics_DUMMY.json")))
    assert metrics["accuracy"] == pytest.approx(6 / 9)
    macro = sk.f1_score(truth, prediction, average="macro")
    assert metrics["macro_f1"] == pytest.approx(macro)
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        truth, prediction, labels=[0, 1, 2], zero_division=0)
    for index, name in enumerate(CLASSES):
        assert metrics["per_class"][name] == pytest.approx(
            {"precision": precision[index], "recall": recall[index], "f1": f1[index],
             "support": support[index]})
    assert metrics["confusion_matrix"] == sk.confusion_matrix(truth, prediction).tolist()


def test_each_frame_is_decoded_once_and_windows_match_direct_reads(tmp_path,
                                                                    counted_decodes):
    json_path = make_dataset(tmp_path)
    manifest = manifest_lib.load_manifest(os.path.dirname(json_path))
    windows = scoring.load_test_windows(json_path, manifest)
    decodes = counted_decodes
    for batch_size in (1, 2, 4, 100):
        decodes.clear()
        batches = list(frame_reader.iterate_batches(windows, manifest, batch_size, workers=2))
        assert len(decodes) == len(set(decodes)) == 6 + 5 + 4
        assert [len(numbers) for numbers, _, _, _ in batches[:-1]] == \
            [batch_size] * (len(batches) - 1)
        produced = {int(number): pixels[row] for numbers, pixels, _, _ in batches
                    for row, number in enumerate(numbers)}
        assert sorted(produced) == list(range(len(windows)))
        for number, window in enumerate(windows):
            expected = np.stack([frames.resize_frame(frames.read_frame(window.path, "color", i),
                                                     IMAGE_DIM)
                                 for i in range(window.start, window.stop + 1)])
            np.testing.assert_array_equal(produced[number], expected)
            assert produced[number].dtype == np.uint8
    decodes.clear()
    produced = {number: pixels for number, pixels, _, _ in
                iterate_windows(windows, manifest, workers=2)}
    assert len(decodes) == 6 + 5 + 4 and sorted(produced) == list(range(len(windows)))


def test_rotated_and_flipped_windows_are_scored_as_transformed(tmp_path):
    from coreLib.preprocessing import augment
    json_path = make_dataset(tmp_path)
    manifest = manifest_lib.load_manifest(os.path.dirname(json_path))
    windows = scoring.load_test_windows(json_path, manifest)
    windows = [window_lists.ListedWindow(w.path, w.start, w.stop, w.label,
                                         rotation=90 * (n % 2), flip=n % 3)
               for n, w in enumerate(windows)]
    model = models.build_model("LRCN", SEQ_LEN, 48, 3, 3)
    manifest = dataclasses.replace(manifest, image_dim=48)   # LRCN's smallest is > 8
    probabilities = forward.predict_windows(model, windows, manifest, batch_size=4,
                                            progress=False)
    for number, window in enumerate(windows):
        pixels = np.stack([frames.resize_frame(frames.read_frame(window.path, "color", i), 48)
                           for i in range(window.start, window.stop + 1)])[np.newaxis]
        pixels = augment.transform_windows(pixels, [window.rotation], [window.flip])
        expected = model(records.scale_pixels(pixels, "uint8"), training=False).numpy()[0]
        np.testing.assert_allclose(probabilities[number], expected, rtol=0, atol=1e-6)


def test_xla_call_with_padded_last_batch_matches_the_traced_call(tmp_path):
    json_path = make_dataset(tmp_path)
    manifest = manifest_lib.load_manifest(os.path.dirname(json_path))
    windows = scoring.load_test_windows(json_path, manifest)
    model = perfect_dummy()
    traced = forward.predict_windows(model, windows, manifest, batch_size=4,
                                     progress=False, jit_compile=False)
    compiled_forward = forward.make_forward(model, manifest, jit_compile=True)
    batch_sizes = []

    def counting_forward(pixels, rotations, flips):
        batch_sizes.append(len(pixels))
        return compiled_forward(pixels, rotations, flips)

    compiled = forward.predict_windows(model, windows, manifest, batch_size=4,
                                       progress=False, forward=counting_forward,
                                       jit_compile=True)
    # 9 windows in batches of 4: the last one is padded to 4, so one XLA shape.
    assert batch_sizes == [4, 4, 4]
    np.testing.assert_allclose(compiled, traced, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(compiled.argmax(axis=1), traced.argmax(axis=1))


def test_pixel_scaling_matches_dtype():
    pixels = np.array([0, 255], np.uint8)
    np.testing.assert_array_equal(records.scale_pixels(pixels, "uint8").numpy(),
                                  np.array([0, 1], np.float32))
    # 16-bit frames: a 12-bit range (4.095 m of depth); farther counts as 4095.
    pixels = np.array([0, 4095, 65535, 32001, 257], np.uint16)
    np.testing.assert_array_equal(records.scale_pixels(pixels, "uint16").numpy(),
                                  np.array([0, 1, 1, 1, 257 / 4095], np.float32))


def _without(entries, key):
    return [{k: v for k, v in entry.items() if k != key} for entry in entries]


@pytest.mark.parametrize("case, message", [
    ("model_name", "unknown model name 'VGG'"),
    ("weights_missing", "weights file not found"),
    ("other_model", "weights of a LRCN model, not DUMMY"),
    ("other_input_shape", "weights for another input shape"),
    ("json_missing", "Test JSON not found"),
    ("json_not_list", "expected a JSON list"),
    ("entry_without_stop", "entry 0: missing stop"),
    ("unknown_class", "class 'purple' is not in the manifest's classes"),
])
def test_bad_input_is_one_line_and_no_results(tmp_path, weights_dir, capsys, case, message):
    json_path = make_dataset(tmp_path)
    entries = json.loads(open(json_path).read())
    model_name, weights = "DUMMY", str(weights_dir / "DUMMY.weights.h5")
    if case == "model_name":
        model_name = "VGG"
    elif case == "weights_missing":
        weights = str(tmp_path / "nope.weights.h5")
    elif case == "other_model":
        weights = str(weights_dir / "LRCN.weights.h5")
    elif case == "other_input_shape":
        weights = str(weights_dir / "dim10.weights.h5")
    elif case == "json_missing":
        os.remove(json_path)
    elif case == "json_not_list":
        open(json_path, "w").write(json.dumps({"windows": entries}))
    elif case == "entry_without_stop":
        open(json_path, "w").write(json.dumps(_without(entries, "stop")))
    elif case == "unknown_class":
        entries[4]["class"] = "purple"
        open(json_path, "w").write(json.dumps(entries))
    code = run_tool("score", [model_name, weights, json_path])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("score.py: error: ")
    assert message in err
    assert results_files(json_path) == []


@pytest.mark.parametrize("case, message", [
    ("class_count", "weights for 4 classes, the manifest has 3"),
    ("missing_frame", "color_3.png: frame missing"),
])
@pytest.mark.slow
def test_bad_input_as_a_script(tmp_path, weights_dir, repo_root, case, message):
    json_path = make_dataset(tmp_path)
    weights = weights_dir / "DUMMY.weights.h5"
    if case == "class_count":
        weights = weights_dir / "classes4.weights.h5"
    else:
        os.remove(tmp_path / "SRC" / "Test" / "subj" / "green" / "color_3.png")
    run = subprocess.run([sys.executable, os.path.join(repo_root, "score.py"), "DUMMY",
                          str(weights), json_path], capture_output=True, text=True,
                         cwd=repo_root)
    assert run.returncode == 2
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert message in run.stderr
    assert run.stdout == ""
    assert results_files(json_path) == []


def test_window_of_wrong_length_is_rejected(tmp_path):
    json_path = make_dataset(tmp_path)
    entries = json.loads(open(json_path).read())
    entries[2]["stop"] += 1
    open(json_path, "w").write(json.dumps(entries))
    manifest = manifest_lib.load_manifest(os.path.dirname(json_path))
    with pytest.raises(ActrecogError, match="entry 2: window .* is not 3 frames"):
        scoring.load_test_windows(json_path, manifest)
