"""README.md stays true: usage blocks equal --help, the two commands up front."""

import os
import re
import subprocess
import sys

import pytest


def _readme(repo_root):
    with open(os.path.join(repo_root, "README.md"), encoding="utf-8") as handle:
        return handle.read()


def test_first_screen_holds_the_two_commands(repo_root):
    first_screen = "\n".join(_readme(repo_root).splitlines()[:25])
    assert "make demo" in first_screen
    assert "make test" in first_screen


def test_every_script_has_a_usage_block(repo_root):
    blocks = re.findall(r"<!-- usage: ([\w.]+) -->", _readme(repo_root))
    assert blocks == ["main.py", "train.py", "debug.py", "score.py", "videogen.py",
                      "detect.py", "export.py", "coreLib.synthetic"]


@pytest.mark.slow
def test_usage_blocks_match_help(repo_root):
    result = subprocess.run([sys.executable, os.path.join("scripts", "readme_usage.py"),
                             "--check"], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr



def test_every_model_argument_names_every_model(script_runner):
    """debug.py's help once left CausalMobileNet out while accepting it (issue 21)."""
    from coreLib.models import MODEL_NAMES
    for script in ("train.py", "debug.py", "score.py", "detect.py", "export.py"):
        completed = script_runner.run(script, ["--help"])
        assert completed.returncode == 0, completed.stderr
        help_text = " ".join(completed.stdout.split())
        for name in MODEL_NAMES:
            assert name in help_text, (script, name)


def test_real_archive_score_command_names_a_json_main_py_writes(repo_root, tiny_pipeline):
    """Step 3 of "Running on the real archive" once named a JSON that never exists
    (issue 21): its JSON argument must match the Test list main.py writes."""
    import fnmatch
    section = _readme(repo_root).split("## Running on the real archive", 1)[1]
    command = next(line for line in section.splitlines() if "python score.py" in line)
    json_argument = command.split()[-1].strip('"')
    assert json_argument.startswith("DEST/DataSet/")
    written = os.path.basename(tiny_pipeline["test_json"])
    assert fnmatch.fnmatchcase(written, os.path.basename(json_argument)), (written,
                                                                          json_argument)
