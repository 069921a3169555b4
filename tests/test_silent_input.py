"""Input the tools used to take without a word (issue 21), and progress in logs.

- Label files of action names outside BII's 16, or that only some subjects have:
  main.py warns once per kind, naming the files, and lists every class with its
  subject count; ``--actions`` pins the set (its refusals are rows of
  test_bad_input_table.py).
- Progress: a bar only on a terminal. In a log (stderr a file, as here) every tool
  writes plain lines - no ``\\r`` frames.
"""

import io
import os
import re
import shutil

import pytest

from coreLib import progress


def _warnings(completed):
    return [line for line in completed.stderr_lines() if line.startswith("main.py: warning:")]


def test_unknown_and_partial_action_names_warn_once_naming_the_files(
        script_runner, tiny_pipeline, tmp_path):
    src = str(tmp_path / "SRC")
    shutil.copytree(tiny_pipeline["src"], src)
    # A typo'd action in one Train subject: outside BII's 16 and in 1 of 3 subjects.
    subject = os.path.join(src, "Train", "aiyang")
    shutil.copytree(os.path.join(subject, "asl-blue"), os.path.join(subject, "ui-foo"))
    shutil.copy(os.path.join(subject, "asl-blue.xml"), os.path.join(subject, "ui-foo.xml"))
    label_file = os.path.join(subject, "ui-foo.xml")

    completed = script_runner.run("main.py", [src, str(tmp_path / "out"), "--image-dim", 8,
                                              "--batch-size", 2, "--workers", 1])
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert _warnings(completed) == [
        f"main.py: warning: action names outside BII's 16, each made a class: 'ui-foo' "
        f"({label_file}) (pin the set with --actions if they are meant)",
        f"main.py: warning: actions that only some subjects have: 'ui-foo' 1 of 3 "
        f"subjects ({label_file})",
    ]
    assert completed.stdout.splitlines()[-1] == (
        "classes: asl-blue (3 subjects), ui-click (3 subjects), ui-foo (1 subject), "
        "no-action")


def test_a_pinned_set_is_quiet_and_dest_may_be_src_itself(script_runner, tiny_pipeline,
                                                          tmp_path):
    src = str(tmp_path / "SRC")
    shutil.copytree(tiny_pipeline["src"], src)
    completed = script_runner.run("main.py", [src, src, "--image-dim", 8, "--batch-size", 2,
                                              "--workers", 1, "--actions", "ui-click,asl-blue"])
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert _warnings(completed) == []
    assert os.path.exists(os.path.join(src, "DataSet", "dataset.json"))
    assert completed.stdout.splitlines()[-1] == (
        "classes: asl-blue (3 subjects), ui-click (3 subjects), no-action")


# ---------------------------------------------------------------------------
# Progress reports.

class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_progress_writes_a_line_a_minute_and_one_at_the_end():
    clock, stream = _Clock(), io.StringIO()
    bar = progress.PlainProgress(total=10, desc="scoring", unit="window", stream=stream,
                                 clock=clock, end_line=True)
    bar.update(3)
    clock.now += 59
    bar.update(1)
    assert stream.getvalue() == ""
    clock.now += 1
    bar.set_postfix(loss="0.5000")
    bar.update(2)
    clock.now += 30
    bar.update(4)
    bar.close()
    bar.close()
    assert stream.getvalue() == (
        "scoring: 6/10 window (60 %), 0.1 window/s, 60 s, loss=0.5000\n"
        "scoring: 10/10 window (100 %), 0.1 window/s, 90 s, loss=0.5000\n")


def test_progress_bar_is_a_bar_only_on_a_terminal():
    from tqdm import tqdm
    log = io.StringIO()
    plain = progress.progress_bar(5, stream=log, desc="x")
    assert isinstance(plain, progress.PlainProgress)
    plain.update(5)
    plain.close()   # no end line unless asked: a short run writes nothing to a log
    assert log.getvalue() == ""
    quiet = progress.progress_bar(5, stream=log, enabled=False, desc="x")
    quiet.update(5)
    quiet.close()
    assert log.getvalue() == "" and quiet.n == 5
    bar = progress.progress_bar(5, stream=_Terminal(), leave=False)
    assert isinstance(bar, tqdm)
    bar.close()


def test_tools_write_plain_progress_lines_into_a_log(script_runner, tiny_pipeline,
                                                     tmp_path):
    runs = dict(tiny_pipeline["runs"])
    video_json = str(tmp_path / "video_sec_DUMMY.json")
    shutil.copy(tiny_pipeline["video_sec"], video_json)
    runs["videogen.py"] = script_runner.run("videogen.py", [video_json, 100])
    runs["coreLib.synthetic"] = script_runner.run(
        os.path.join("coreLib", "synthetic", "__main__.py"),
        [str(tmp_path / "synthetic"), "--train-subjects", "LN", "--test-subjects", "alvin",
         "--actions", "asl-blue", "--size", "32x24", "--reps", 1, "--min-len", 4,
         "--max-len", 4, "--detection-sequences", 0, "--workers", 1])
    runs["detect.py"] = script_runner.run(
        "detect.py", ["DUMMY", os.path.join(tiny_pipeline["model_dir"], "DUMMY.weights.h5"),
                      os.path.join(tiny_pipeline["src"], "Test", "alvin", "asl-blue"),
                      "--out", str(tmp_path / "detections")])
    for tool, completed in runs.items():
        assert completed.returncode == 0, (tool, completed.stderr[-2000:])
        assert "\r" not in completed.stderr, tool
        if tool == "train.py":   # a line per epoch, when its steps are done
            (line,) = completed.stderr_lines()
            found = re.match(r"epoch 1/1: (\d+)/(\d+) step \(100 %\), ", line)
            assert found and found.group(1) == found.group(2), line
        else:   # runs of seconds: no line at all (one a minute on long runs)
            assert completed.stderr == "", (tool, completed.stderr)
