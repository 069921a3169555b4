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

