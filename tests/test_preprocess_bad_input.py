"""Every bad input of main.py: exit code 2, one stderr line naming the file and the
problem, no traceback, and DEST exactly as it was (issue 2, section 5).

Most cases run main.py's body in this process (the same code path as the script,
through coreLib.cli.run_main); two run it as a real subprocess, to show that a
fresh process prints nothing else (TensorFlow and OpenCV chatter included).
"""

import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import run_tool
from file_trees import tree_bytes
from tiny_dataset import make_dataset


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp("pristine") / "src"))


def snapshot(root):
    """Relative path -> bytes of every file and folder under root (None if absent)."""
    if not os.path.exists(root):
        return None
    return tree_bytes(root, folders=True)


# The tiny dataset's own action names (not BII's): pinned, so main.py has no
# warning about them and a refusal is its one error line.
PINNED = ["--actions", "act-a,act-b"]


def run_in_process(argv, capfd):
    code = run_tool("main", list(argv) + PINNED)
    out, err = capfd.readouterr()
    return code, err


def write_png(path, image):
    assert cv2.imwrite(str(path), image)


def png_bytes(image):
    return cv2.imencode(".png", image)[1].tobytes()


# Each case damages a copy of the dataset (src) and returns
# (extra arguments, text the error line must contain).
def no_src(src):
    shutil.rmtree(src)
    return [], f"{src}: source folder not found"


def no_train(src):
    shutil.rmtree(src / "Train")
    return [], f"{src}: no Train/ folder"


def no_test(src):
    shutil.rmtree(src / "Test")
    return [], f"{src}: no Test/ folder"


def subject_without_labels(src):
    for name in ("act-a.xml", "act-b.xml"):
        os.remove(src / "Train" / "bob" / name)
    return [], f"{src / 'Train' / 'bob'}: subject folder has no label files"


def empty_subject(src):
    os.makedirs(src / "Test" / "nobody")
    return [], f"{src / 'Test' / 'nobody'}: subject folder has no label files"


def label_without_frames(src):
    shutil.rmtree(src / "Train" / "ann" / "act-b")
    return [], f"{src / 'Train' / 'ann' / 'act-b.xml'}: label file without its frame folder"


def frames_without_label(src):
    os.remove(src / "Test" / "zed" / "act-a.xml")
    return [], f"{src / 'Test' / 'zed' / 'act-a'}: frame folder without its label file"


def missing_frame(src):
    os.remove(src / "Train" / "ann" / "act-a" / "color_5.png")
    return [], f"{src / 'Train' / 'ann' / 'act-a' / 'color_5.png'}: frame missing"


def missing_depth_frame(src):
    os.remove(src / "Train" / "ann" / "act-a" / "depth_7.png")
    return (["--modality", "depth"],
            f"{src / 'Train' / 'ann' / 'act-a' / 'depth_7.png'}: frame missing")


def corrupt_png(src):
    (src / "Train" / "bob" / "act-a" / "color_7.png").write_bytes(b"not a png at all")
    return [], f"{src / 'Train' / 'bob' / 'act-a' / 'color_7.png'}: not a readable PNG"


def truncated_png(src):
    path = src / "Test" / "zed" / "act-b" / "color_8.png"
    path.write_bytes(path.read_bytes()[:-30])
    return [], f"{path}: not a readable PNG"


def empty_png(src):
    (src / "Train" / "LN" / "act-b" / "color_0.png").write_bytes(b"")
    return [], f"{src / 'Train' / 'LN' / 'act-b' / 'color_0.png'}: not a readable PNG"


def sixteen_bit_color(src):
    path = src / "Train" / "ann" / "act-b" / "color_2.png"
    write_png(path, np.zeros((10, 12, 3), np.uint16))
    return [], f"{path}: 16-bit pixels, color frames must be 8-bit"


def eight_bit_depth(src):
    path = src / "Test" / "zed" / "act-a" / "depth_3.png"
    write_png(path, np.zeros((10, 12), np.uint8))
    return ["--modality", "depth"], f"{path}: 8-bit pixels, depth frames must be 16-bit"


def grey_color(src):
    path = src / "Train" / "bob" / "act-b" / "color_4.png"
    write_png(path, np.zeros((10, 12), np.uint8))
    return [], f"{path}: 1 channel(s), color frames must have 3"


def three_channel_confi(src):
    path = src / "Train" / "bob" / "act-b" / "confi_1.png"
    write_png(path, np.zeros((10, 12, 3), np.uint16))
    return ["--modality", "confi"], f"{path}: 3 channel(s), confi frames must have 1"


def frame_of_another_size(src):
    path = src / "Train" / "LN" / "act-a" / "color_6.png"
    write_png(path, np.zeros((10, 14, 3), np.uint8))
    return [], f"{path}: 14x10 pixels, but frame 0 of the sequence is 12x10"


def label(src, text):
    path = src / "Train" / "ann" / "act-a.xml"
    path.write_text(text)
    return path


def malformed_xml(src):
    path = label(src, "<opencv_storage><label><_><pos>2</pos>")
    return [], f"{path}: malformed XML"


def item_without_pos(src):
    path = label(src, "<opencv_storage><l><_><len>4</len></_></l></opencv_storage>")
    return [], f"{path}: item 0 has no <pos>"


def item_without_len(src):
    path = label(src, "<opencv_storage><l><_><pos>4</pos></_></l></opencv_storage>")
    return [], f"{path}: item 0 has no <len>"


def negative_value(src):
    path = label(src, "<opencv_storage><l><_><pos>-2</pos><len>4</len></_></l>"
                      "</opencv_storage>")
    return [], f"{path}: item 0 <pos> is negative (-2)"


def non_integer_value(src):
    path = label(src, "<opencv_storage><l><_><pos>2</pos><len>four</len></_></l>"
                      "</opencv_storage>")
    return [], f"{path}: item 0 <len> is 'four', not an integer"


def interval_past_last_frame(src):
    path = label(src, "<opencv_storage><l><_><pos>2</pos><len>4</len></_><_><pos>12</pos>"
                      "<len>5</len></_></l></opencv_storage>")
    return [], f"{path}: item 1 (pos 12, len 5) runs past the last frame 15"


def seq_len_too_large(src):
    return (["--seq-len", "10"],
            f"{src / 'Test' / 'zed' / 'act-b'}: 9 frames, fewer than the window length L=10")


def label_len_too_large(src):
    path = src / "Test" / "zed" / "act-b"
    for name in os.listdir(path):
        if int(name.split("_")[1].split(".")[0]) >= 3:
            os.remove(path / name)
    (src / "Test" / "zed" / "act-b.xml").write_text(
        "<opencv_storage><l><_><pos>0</pos><len>3</len></_></l></opencv_storage>")
    for xml in src.glob("*/*/*.xml"):
        if xml.parent.name != "zed":
            xml.write_text("<opencv_storage><l><_><pos>0</pos><len>5</len></_></l>"
                           "</opencv_storage>")
    # Shortest len is 3 (zed/act-b), but --seq-len 4 exceeds that sequence.
    return ["--seq-len", "4"], f"{path}: 3 frames, fewer than the window length L=4"


def batch_larger_than_train(src):
    # 27 action + 27 // 3 no-action Train windows (see test_preprocess.py).
    return (["--batch-size", "37"], "--batch-size: the Train split has 36 windows after "
                                    "balancing no-action, fewer than one batch of 37")


def unknown_eval_subject(src):
    return (["--eval-subjects", "LN,zed"],
            "--eval-subjects: 'zed' is not a Train subject (Train subjects: LN, ann, bob)")


CASES = [no_src, no_train, no_test, subject_without_labels, empty_subject,
         label_without_frames, frames_without_label, missing_frame, missing_depth_frame,
         corrupt_png, truncated_png, empty_png, sixteen_bit_color, eight_bit_depth,
         grey_color, three_channel_confi, frame_of_another_size, malformed_xml,
         item_without_pos, item_without_len, negative_value, non_integer_value,
         interval_past_last_frame, seq_len_too_large, label_len_too_large,
         batch_larger_than_train, unknown_eval_subject]


@pytest.mark.parametrize("case", CASES, ids=[case.__name__ for case in CASES])
@pytest.mark.parametrize("dest_exists", [False, True], ids=["new-dest", "existing-dest"])
def test_bad_input_is_one_line_and_leaves_dest_unchanged(case, dest_exists, pristine,
                                                         tmp_path, capfd):
    src = tmp_path / "src"
    shutil.copytree(pristine, src)
    extra, expected = case(src)
    dest = tmp_path / "out" / "dest"
    if dest_exists:
        os.makedirs(dest / "DataSet")
        (dest / "notes.txt").write_text("keep me")
    before = snapshot(str(tmp_path / "out"))
    argv = [str(src), str(dest), "--batch-size", "4", "--workers", "1"] + extra
    code, err = run_in_process(argv, capfd)
    assert code == 2
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("main.py: error: "), err
    assert expected in err, err
    assert "Traceback" not in err
    assert snapshot(str(tmp_path / "out")) == before


def test_interval_past_last_frame_with_clip_is_a_warning(pristine, tmp_path, capfd):
    src = tmp_path / "src"
    shutil.copytree(pristine, src)
    _, expected = interval_past_last_frame(src)
    argv = [str(src), str(tmp_path / "dest"), "--batch-size", "4", "--workers", "1",
            "--clip-intervals"]
    code, err = run_in_process(argv, capfd)
    assert code == 0
    assert err == f"main.py: warning: {expected}; clipped to len 4\n"
    assert (tmp_path / "dest" / "DataSet" / "dataset.json").exists()


def test_dest_not_writable(pristine, tmp_path, capfd):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, err = run_in_process([pristine, str(blocker / "dest"), "--workers", "1",
                                "--batch-size", "4"], capfd)
    assert code == 2
    assert err.startswith(f"main.py: error: {blocker / 'dest'}: not writable")
    assert err.count("\n") == 1
    assert blocker.read_text() == "x"


def test_bad_frame_found_by_a_worker_process(pristine, tmp_path, capfd):
    src = tmp_path / "src"
    shutil.copytree(pristine, src)
    _, expected = truncated_png(src)
    dest = tmp_path / "dest"
    code, err = run_in_process([str(src), str(dest), "--batch-size", "4", "--workers", "2"],
                               capfd)
    assert code == 2 and expected in err and err.count("\n") == 1
    assert not dest.exists()


@pytest.mark.slow
def test_script_prints_exactly_one_line(pristine, tmp_path, repo_root):
    # A truncated PNG found by a worker process (OpenCV would warn about it).
    src = tmp_path / "src"
    shutil.copytree(pristine, src)
    _, expected = truncated_png(src)
    dest = tmp_path / "dest"
    result = subprocess.run(
        [sys.executable, os.path.join(repo_root, "main.py"), str(src), str(dest),
         "--batch-size", "4", "--workers", "2"] + PINNED,
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr == f"main.py: error: {result.stderr.split('error: ', 1)[1]}"
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert result.stdout == ""
    assert not dest.exists()


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "argument --workers: '0' must be a positive integer"),
    (["--modality", "ir"], "argument --modality: invalid choice: 'ir'"),
    (["--seed", "-1"], "argument --seed: -1 must be >= 0"),
])
def test_bad_arguments(argv, message, tmp_path, capfd):
    code, err = run_in_process(["src", str(tmp_path / "dest")] + argv, capfd)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "dest").exists()
