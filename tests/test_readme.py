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


def test_train_help_gives_each_model_its_records_peak_step():
    """train.py's --lr help spells each model's default peak step (its --help may not
    import Keras, so it cannot read the registry): the text says what the records say."""
    import train
    from coreLib.models import MODEL_RECORDS
    help_text = " ".join(train.build_parser().format_help().split())
    defaults = re.search(r"peak Adam step size \(default: the model's: (.*?)\)", help_text)
    stated = {}
    for rate, names in re.findall(r"(\d+e-\d+) ([\w ,]+?)(?=, \d|$)", defaults.group(1)):
        stated.update((name, float(rate)) for name in re.split(r", | and ", names))
    assert stated == {name: record.default_peak_step for name, record in MODEL_RECORDS.items()}


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


def _github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation but
    hyphens dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_readme_and_docs_resolves(repo_root):
    """The README links its reference pages in docs/ (issue 23): every relative link
    of either names a file that exists, and its #fragment a heading of that file."""
    pages = ["README.md"] + sorted(os.path.join("docs", name)
                                   for name in os.listdir(os.path.join(repo_root, "docs"))
                                   if name.endswith(".md"))
    anchors = {}
    for page in pages:
        with open(os.path.join(repo_root, page), encoding="utf-8") as handle:
            text = handle.read()
        anchors[os.path.normpath(page)] = {
            _github_anchor(line.lstrip("#")) for line in text.splitlines()
            if re.match(r"#+ ", line)}
    linked = set()
    for page in pages:
        with open(os.path.join(repo_root, page), encoding="utf-8") as handle:
            text = re.sub(r"```.*?```", "", handle.read(), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, fragment = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) \
                if path else os.path.normpath(page)
            assert os.path.exists(os.path.join(repo_root, resolved)), (page, target)
            linked.add(resolved)
            if fragment:
                assert fragment in anchors[resolved], (page, target)
    # Every reference page is reachable from the README.
    assert set(anchors) - {"README.md"} <= linked
