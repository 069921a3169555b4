"""Bad input, every tool, one table.

One row per case across main.py, debug.py, train.py, score.py and videogen.py.
Each row damages a private copy of a tiny, real pipeline's files (SRC -> main.py
-> train.py -> score.py, built once for the module), runs the script, and
asserts: exit code 2, exactly one line on stderr that names the file or the
argument, no traceback, and no new file in the folder the tool writes to.

The rows run through tests/tool_runner.py's zygote (a forked real process per
row, TensorFlow imported once); two rows also run in fresh interpreters, which
covers what TensorFlow's import prints.
"""

import json
import os
import shutil

import cv2
import numpy as np
import pytest

import tiny_dataset
from file_trees import tree_paths
from tiny_dataset import write_tiny_source
from tool_runner import REPO_ROOT, run_fresh
from tool_runner import PIPELINE_BATCH_SIZE as BATCH_SIZE, PIPELINE_IMAGE_DIM as IMAGE_DIM


@pytest.fixture(scope="module")
def runner(script_runner):
    return script_runner


@pytest.fixture(scope="module")
def pipeline(tiny_pipeline):
    return tiny_pipeline


# ---------------------------------------------------------------------------
# Case builders: each gets (case folder, pipeline) and returns
# (script, args, folder that must gain no file, texts of which one must appear).

def _copy_src(case, pipeline):
    src = os.path.join(case, "SRC")
    shutil.copytree(pipeline["src"], src)
    return src


def _main_case(damage, *options, expect):
    def build(case, pipeline):
        src = _copy_src(case, pipeline)
        expected = damage(src) if damage else None
        dest = os.path.join(case, "out")
        args = [src, dest, "--image-dim", IMAGE_DIM, "--batch-size", BATCH_SIZE,
                "--workers", 1, *options]
        return "main.py", args, case, (expected,) if expected else expect
    return build


def _sequence(src, split="Train", subject="aiyang", action="asl-blue"):
    return os.path.join(src, split, subject, action)


def _write_label(src, text, action="asl-blue"):
    path = os.path.join(src, "Train", "aiyang", action + ".xml")
    with open(path, "w") as handle:
        handle.write(text)
    return "asl-blue.xml"


def _label(items):
    body = "".join(f"<_>{item}</_>" for item in items)
    return f'<?xml version="1.0"?>\n<opencv_storage><label>{body}</label></opencv_storage>\n'


def _remove(path):
    os.remove(path)


def _replace_frame(src, image=None, data=None, index=3):
    path = os.path.join(_sequence(src), f"color_{index}.png")
    if data is not None:
        with open(path, "wb") as handle:
            handle.write(data)
    else:
        cv2.imwrite(path, image)
    return f"color_{index}.png"


def _only_test(src):
    shutil.rmtree(os.path.join(src, "Train"))
    return "Train"


def _no_label_files(src):
    for name in os.listdir(os.path.join(src, "Train", "aiyang")):
        if name.endswith(".xml"):
            os.remove(os.path.join(src, "Train", "aiyang", name))
    return "aiyang"


def _label_without_folder(src):
    shutil.rmtree(_sequence(src))
    return "asl-blue"


def _folder_without_label(src):
    os.remove(_sequence(src) + ".xml")
    return "asl-blue"


def _missing_middle_frame(src):
    os.remove(os.path.join(_sequence(src), "color_5.png"))
    return "color_5.png"


def _other_size(src):
    cv2.imwrite(os.path.join(_sequence(src), "color_4.png"), np.zeros((20, 20, 3), np.uint8))
    return "color_4.png"


MAIN_CASES = {
    "main-src-missing": lambda case, pipeline: (
        "main.py", [os.path.join(case, "nowhere"), os.path.join(case, "out")], case,
        ("nowhere",)),
    "main-src-without-train": _main_case(_only_test, expect=None),
    "main-subject-without-label-files": _main_case(_no_label_files, expect=None),
    "main-label-file-without-folder": _main_case(_label_without_folder, expect=None),
    "main-folder-without-label-file": _main_case(_folder_without_label, expect=None),
    "main-missing-middle-frame": _main_case(_missing_middle_frame, expect=None),
    "main-corrupt-png": _main_case(lambda src: _replace_frame(src, data=b"\x89PNG\r\n junk"),
                                   expect=None),
    "main-empty-png": _main_case(lambda src: _replace_frame(src, data=b""), expect=None),
    "main-16-bit-colour": _main_case(
        lambda src: _replace_frame(src, np.zeros((12, 16, 3), np.uint16)), expect=None),
    "main-1-channel-colour": _main_case(
        lambda src: _replace_frame(src, np.zeros((12, 16), np.uint8)), expect=None),
    "main-frames-of-different-sizes": _main_case(_other_size, expect=None),
    "main-malformed-xml": _main_case(lambda src: _write_label(src, "<opencv_storage><label>"),
                                     expect=None),
    "main-item-without-pos": _main_case(
        lambda src: _write_label(src, _label(["<len>4</len>"])), expect=None),
    "main-item-without-len": _main_case(
        lambda src: _write_label(src, _label(["<pos>1</pos>"])), expect=None),
    "main-negative-value": _main_case(
        lambda src: _write_label(src, _label(["<pos>-1</pos><len>4</len>"])), expect=None),
    "main-non-integer-value": _main_case(
        lambda src: _write_label(src, _label(["<pos>1.5</pos><len>4</len>"])), expect=None),
    "main-interval-past-last-frame": _main_case(
        lambda src: _write_label(src, _label(["<pos>9</pos><len>6</len>"])), expect=None),
    "main-seq-len-larger-than-a-sequence": _main_case(None, "--seq-len", 13,
                                                      expect=("--seq-len",)),
    "main-unknown-eval-subject": _main_case(None, "--eval-subjects", "nobody",
                                            expect=("nobody",)),
    "main-image-dim-zero": _main_case(None, "--image-dim", 0, expect=("--image-dim",)),
    "main-unknown-modality": _main_case(None, "--modality", "infrared",
                                        expect=("--modality",)),
    "main-hand-frames-with-offline-augment": _main_case(
        None, "--frames", "hand", "--offline-augment", expect=("--frames",)),
    "main-hand-side-without-hand-frames": _main_case(None, "--hand-side-mm", 250,
                                                     expect=("--hand-side-mm",)),
    "main-hand-path-without-hand-frames": _main_case(None, "--hand-path", "motion",
                                                     expect=("--hand-path",)),
}


def _dest_not_writable(case, pipeline):
    src = _copy_src(case, pipeline)
    blocker = os.path.join(case, "a-file")
    with open(blocker, "w") as handle:
        handle.write("not a folder")
    return "main.py", [src, os.path.join(blocker, "out"), "--image-dim", IMAGE_DIM,
                       "--batch-size", BATCH_SIZE, "--workers", 1], case, ("a-file",)


MAIN_CASES["main-dest-not-writable"] = _dest_not_writable


def _dest_inside_src(case, pipeline):
    """Issue 21: DEST below SRC would put the DataSet into the source tree."""
    src = _copy_src(case, pipeline)
    dest = os.path.join(src, "Train", "out")
    return "main.py", [src, dest, "--image-dim", IMAGE_DIM, "--batch-size", BATCH_SIZE,
                       "--workers", 1], case, (f"{dest}: DEST lies inside SRC",)


MAIN_CASES["main-dest-inside-src"] = _dest_inside_src
MAIN_CASES["main-action-outside-pinned-set"] = _main_case(
    None, "--actions", "asl-blue", expect=("ui-click.xml: action 'ui-click' is not one of "
                                           "--actions",))
MAIN_CASES["main-pinned-action-without-label-files"] = _main_case(
    None, "--actions", "asl-blue,ui-click,ui-swipe",
    expect=("--actions: 'ui-swipe' has no label file",))


def _copy_dataset(case, pipeline):
    dataset = os.path.join(case, "DataSet")
    shutil.copytree(pipeline["dataset"], dataset,
                    ignore=shutil.ignore_patterns("Results"))
    return dataset


def _train_case(damage=None, model="DUMMY", *options, expect, model_dir=None):
    def build(case, pipeline):
        dataset = _copy_dataset(case, pipeline)
        expected = damage(dataset) if damage else None
        target = model_dir(case, pipeline) if model_dir else os.path.join(case, "model")
        args = [dataset, model, target, "--epochs", 1, "--batch-size", BATCH_SIZE,
                "--quiet", *options]
        return "train.py", args, case, (expected,) if expected else expect
    return build


def _no_manifest(dataset):
    os.remove(os.path.join(dataset, "dataset.json"))
    return "dataset.json"


def _shard_missing(dataset):
    os.remove(os.path.join(dataset, "TFRECORD", "Train", "Train_1.tfrecord"))
    return "Train_1.tfrecord"


def _shard_changed(dataset):
    with open(os.path.join(dataset, "TFRECORD", "Train", "Train_1.tfrecord"), "ab") as handle:
        handle.write(b"\0")
    return "Train_1.tfrecord"


def _manifest_shape_changed(dataset):
    _double_image_dim(dataset)
    return None


def _other_model_dir(case, pipeline):
    target = os.path.join(case, "model")
    shutil.copytree(pipeline["model_dir"], target)
    return target


TRAIN_CASES = {
    "train-unknown-model": _train_case(model="NOPE", expect=("NOPE",)),
    "train-no-manifest": _train_case(_no_manifest, expect=None),
    "train-shard-missing": _train_case(_shard_missing, expect=None),
    "train-shard-sha256-differs": _train_case(_shard_changed, expect=None),
    "train-records-disagree-with-manifest": _train_case(
        _manifest_shape_changed, expect=("Train_0.tfrecord", "image_dim", "shape")),
    "train-batch-larger-than-split": _train_case(
        None, "DUMMY", "--batch-size", 1000, expect=("--batch-size", "batch size")),
    "train-model-dir-of-another-model": _train_case(
        None, "LRCN", expect=("DUMMY",), model_dir=_other_model_dir),
    "train-epochs-zero": _train_case(None, "DUMMY", "--epochs", 0, expect=("--epochs",)),
    # Refused from the model's record before the model is built: no MODEL_DIR, no
    # run_config.json left behind.
    "train-lrcn-on-small-frames": _train_case(
        None, "LRCN", expect=("LRCN", f"image_dim {IMAGE_DIM} is too small")),
    "train-color-jitter-one": _train_case(None, "DUMMY", "--color-jitter", 1,
                                          expect=("--color-jitter",)),
    "train-unknown-lr-schedule": _train_case(None, "DUMMY", "--lr-schedule", "linear",
                                             expect=("--lr-schedule", "linear")),
}


def _debug_case(damage=None, flag="CHECK", expect=None):
    def build(case, pipeline):
        dataset = _copy_dataset(case, pipeline)
        expected = damage(dataset) if damage else None
        return "debug.py", [dataset, flag], case, (expected,) if expected else expect
    return build


def _corrupt_record(dataset):
    """Flips a byte inside a record (the shard's sha256 updated to match)."""
    path = os.path.join(dataset, "TFRECORD", "Train", "Train_0.tfrecord")
    data = bytearray(open(path, "rb").read())
    data[40] ^= 0xFF
    with open(path, "wb") as handle:
        handle.write(data)
    manifest_path = os.path.join(dataset, "dataset.json")
    manifest = json.load(open(manifest_path))
    import hashlib
    for shard in manifest["splits"]["Train"]["shards"]:
        if shard["path"].endswith("Train_0.tfrecord"):
            shard["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)
    return "Train_0.tfrecord"


DEBUG_CASES = {
    "debug-no-manifest": _debug_case(_no_manifest),
    "debug-unknown-flag": _debug_case(flag="NOPE", expect=("NOPE",)),
    "debug-shard-missing": _debug_case(_shard_missing),
    "debug-corrupt-record": _debug_case(_corrupt_record),
}


def _score_case(edit=None, model="DUMMY", weights=None, expect=None):
    """score.py on a copy of the Test JSON (and its manifest) in the case folder."""
    def build(case, pipeline):
        json_path = os.path.join(case, os.path.basename(pipeline["test_json"]))
        shutil.copy(pipeline["test_json"], json_path)
        shutil.copy(os.path.join(pipeline["dataset"], "dataset.json"), case)
        expected = edit(json_path, case) if edit else None
        weights_path = (weights(case, pipeline) if weights else
                        os.path.join(pipeline["model_dir"], "DUMMY.weights.h5"))
        return "score.py", [model, weights_path, json_path], case, \
            (expected,) if expected else expect
    return build


def _rewrite_json(json_path, change):
    entries = json.load(open(json_path))
    entries = change(entries)
    with open(json_path, "w") as handle:
        json.dump(entries, handle)
    return os.path.basename(json_path)


def _frame_missing(json_path, case):
    entries = json.load(open(json_path))
    folder = os.path.join(case, "sequence")
    shutil.copytree(entries[0]["path"], folder)
    os.remove(os.path.join(folder, "color_2.png"))
    for entry in entries:
        if entry["path"] == entries[0]["path"]:
            entry["path"] = folder
    with open(json_path, "w") as handle:
        json.dump(entries, handle)
    return "color_2.png"


def _double_image_dim(case):
    path = os.path.join(case, "dataset.json")
    manifest = json.load(open(path))
    manifest["image_dim"] = 2 * manifest["image_dim"]
    with open(path, "w") as handle:
        json.dump(manifest, handle)


def _without(key):
    return lambda entries: [{k: v for k, v in entry.items() if k != key} if number == 3
                            else entry for number, entry in enumerate(entries)]


def _dataset_of_another_class(json_path, case):
    """A 4-class DataSet (ui-swipe added) for the 3-class weights (issue 21)."""
    path = os.path.join(case, "dataset.json")
    manifest = json.load(open(path))
    manifest["classes"] = manifest["classes"][:-1] + ["ui-swipe", "no-action"]
    with open(path, "w") as handle:
        json.dump(manifest, handle)
    _rewrite_json(json_path, lambda entries: entries[:2] + [dict(entries[2],
                                                                 **{"class": "ui-swipe"})])
    return None


SCORE_CASES = {
    # The weights' run config is what differs, not the JSON's class.
    "score-weights-of-fewer-classes-than-the-dataset": _score_case(
        _dataset_of_another_class, expect=("DUMMY.weights.h5: weights of 3 classes",)),
    "score-unknown-model": _score_case(model="NOPE", expect=("NOPE",)),
    "score-weights-missing": _score_case(
        weights=lambda case, pipeline: os.path.join(case, "gone.weights.h5"),
        expect=("gone.weights.h5",)),
    # (ConvNet3D and LRCN cannot be built at image_dim 8: another shape instead.)
    "score-weights-of-another-shape": _score_case(
        lambda path, case: _double_image_dim(case), expect=("DUMMY.weights.h5",)),
    "score-json-missing": _score_case(
        lambda path, case: os.remove(path) or os.path.basename(path)),
    "score-json-not-a-list": _score_case(
        lambda path, case: _rewrite_json(path, lambda entries: {"windows": entries})),
    "score-entry-without-path": _score_case(
        lambda path, case: _rewrite_json(path, _without("path"))),
    "score-entry-without-class": _score_case(
        lambda path, case: _rewrite_json(path, _without("class"))),
    "score-class-unknown": _score_case(
        lambda path, case: _rewrite_json(
            path, lambda entries: entries[:2] + [dict(entries[2], **{"class": "jazz-hands"})]),
        expect=("jazz-hands",)),
    "score-frame-missing": _score_case(_frame_missing),
}


def _videogen_case(edit=None, max_len="3", expect=None):
    def build(case, pipeline):
        json_path = os.path.join(case, "video_sec_DUMMY.json")
        shutil.copy(pipeline["video_sec"], json_path)
        expected = edit(json_path) if edit else None
        return "videogen.py", [json_path, max_len], case, (expected,) if expected else expect
    return build


VIDEOGEN_CASES = {
    "videogen-max-len-zero": _videogen_case(max_len="0", expect=("MAX_LEN",)),
    "videogen-max-len-not-integer": _videogen_case(max_len="ten", expect=("MAX_LEN",)),
    "videogen-json-missing": lambda case, pipeline: (
        "videogen.py", [os.path.join(case, "gone.json"), "3"], case, ("gone.json",)),
    "videogen-without-truth": _videogen_case(
        lambda path: _rewrite_json(path, _without("truth"))),
    "videogen-without-prediction": _videogen_case(
        lambda path: _rewrite_json(path, _without("prediction"))),
}

_DEBUG_MISSING = pytest.mark.skipif(
    not os.path.exists(os.path.join(REPO_ROOT, "debug.py")), reason="debug.py not written yet")
CASES = [pytest.param(builder, id=name)
         for table in (MAIN_CASES, TRAIN_CASES, SCORE_CASES, VIDEOGEN_CASES)
         for name, builder in table.items()]
CASES += [pytest.param(builder, id=name, marks=_DEBUG_MISSING)
          for name, builder in DEBUG_CASES.items()]


def files_under(folder):
    return set(tree_paths(folder))


def check_one_line_error(completed, script, expected):
    lines = completed.stderr_lines()
    assert completed.returncode == 2, (completed.returncode, completed.stderr[-2000:])
    assert "Traceback" not in completed.stderr
    assert len(lines) == 1, completed.stderr
    line = lines[-1].split("\r")[-1]
    assert line.startswith(f"{script}: error: "), line
    assert any(text in line for text in expected), (expected, line)


@pytest.mark.parametrize("builder", CASES)
def test_bad_input_is_one_line_and_exit_2(builder, runner, pipeline, tmp_path):
    case = str(tmp_path)
    script, args, watched, expected = builder(case, pipeline)
    before = files_under(watched)
    completed = runner.run(script, [str(arg) for arg in args])
    check_one_line_error(completed, script, expected)
    assert files_under(watched) == before


@pytest.mark.parametrize("name,table", [("main-missing-middle-frame", MAIN_CASES),
                                        ("train-shard-sha256-differs", TRAIN_CASES)])
def test_bad_input_in_a_fresh_interpreter(name, table, pipeline, tmp_path):
    """The same contract including everything TensorFlow's import could print."""
    case = str(tmp_path)
    script, args, watched, expected = table[name](case, pipeline)
    before = files_under(watched)
    completed = run_fresh(script, args)
    check_one_line_error(completed, script, expected)
    assert files_under(watched) == before


def test_tiny_source_matches_its_description(tmp_path):
    """The rows above rely on this layout (12 frames, shortest len 4, 3 splits)."""
    src = write_tiny_source(str(tmp_path))
    assert sorted(os.listdir(src)) == ["Test", "Train"]
    sequence = os.path.join(src, "Train", "aiyang", "asl-blue")
    assert len(os.listdir(sequence)) == 3 * tiny_dataset.TINY_FRAMES
    assert cv2.imread(os.path.join(sequence, "color_0.png")).shape == (12, 16, 3)
    assert cv2.imread(os.path.join(sequence, "depth_0.png"), cv2.IMREAD_UNCHANGED).dtype \
        == np.uint16
