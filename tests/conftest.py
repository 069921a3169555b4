"""Shared fixtures. TensorFlow's start-up chatter is silenced once for the session."""

import atexit
import os
import shutil
import sys
import tempfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# One XLA compilation cache for the session's processes: pytest itself, the
# script zygote's children, fresh interpreters and the distributed workers inherit
# it, so a step compiled with jit_compile (--deterministic, the augmentation
# kernels) is compiled once per program, not once per process. A cached program is
# the program a compile would give (keyed by its HLO): the runs' bytes do not
# change. Fresh for each session (an empty folder), removed at its end. Under
# pytest-xdist (make test) each worker is a session of its own with its own cache
# (no two processes write one folder); the flags are built from the caller's
# TF_XLA_FLAGS, which the workers inherit from the controller as _CALLER_XLA_FLAGS.
_CALLER_XLA_FLAGS = os.environ.setdefault("ACTRECOG_TESTS_CALLER_XLA_FLAGS",
                                          os.environ.get("TF_XLA_FLAGS", ""))
_XLA_CACHE = tempfile.mkdtemp(prefix="actrecog-tests-xla-")
os.environ["TF_XLA_FLAGS"] = " ".join(filter(None, (
    _CALLER_XLA_FLAGS, f"--tf_xla_persistent_cache_directory={_XLA_CACHE}")))
_SESSION_PID = os.getpid()
atexit.register(lambda: os.getpid() == _SESSION_PID
                and shutil.rmtree(_XLA_CACHE, ignore_errors=True))

from coreLib.cli import import_tensorflow_quietly  # noqa: E402


def pytest_configure(config):
    """TensorFlow imported quietly before any test module is collected; not in a
    pytest-xdist controller, which collects and runs no test (its workers do)."""
    if (config.getoption("dist", default="no") != "no"
            and not config.getoption("collectonly")
            and not hasattr(config, "workerinput")):
        return
    import_tensorflow_quietly()


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test``: ``-n 2 --dist loadfile``, one module per
    worker at a time, in collection order): the modules with the most tests marked
    slow first, so the long ones start early and the workers end together. Each
    module's tests stay together and in order (its module fixtures are built once).
    A plain run keeps pytest's order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow, first = {}, {}
    for index, item in enumerate(items):
        first.setdefault(item.path, index)
        slow[item.path] = slow.get(item.path, 0) + bool(item.get_closest_marker("slow"))
    items.sort(key=lambda item: (-slow[item.path], first[item.path]))


@pytest.fixture(scope="session")
def repo_root() -> str:
    """Absolute path of the repository (to run its scripts)."""
    return REPO_ROOT


# The local GCS fixtures (tests/gcs_fixture.py), registered once for the session.
from gcs_fixture import gcs_bucket, local_gcs  # noqa: E402,F401


@pytest.fixture(scope="session")
def script_runner(tmp_path_factory):
    """One zygote for the session's script runs (tests/tool_runner.py)."""
    from tool_runner import ToolRunner
    with ToolRunner(str(tmp_path_factory.mktemp("script-runs"))) as zygote:
        yield zygote


@pytest.fixture(scope="session")
def tiny_pipeline(script_runner, tmp_path_factory):
    """A finished tiny SRC -> main.py -> train.py -> score.py run (read-only: copy
    what a test damages); see tool_runner.build_tiny_pipeline."""
    from tool_runner import build_tiny_pipeline
    return build_tiny_pipeline(script_runner, str(tmp_path_factory.mktemp("tiny-pipeline")))


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory):
    """A small synthetic ``DataSet/`` of records (tests/synthetic_dataset.py: 48 Train,
    16 Eval windows; 6 steps per epoch at batch 8), shared read-only by the session."""
    import synthetic_dataset
    folder = str(tmp_path_factory.mktemp("data") / "DataSet")
    synthetic_dataset.write_dataset(folder)
    return folder


@pytest.fixture
def counted_decodes(monkeypatch):
    """The paths ``frames.decode_frame`` decodes during the test, in order (a list
    the test may clear between runs)."""
    from coreLib.data import frames
    decodes = []
    real_decode = frames.decode_frame

    def counting_decode(data, modality, path="<bytes>"):
        decodes.append(path)
        return real_decode(data, modality, path)

    monkeypatch.setattr(frames, "decode_frame", counting_decode)
    return decodes


def run_tool(module_name: str, argv) -> int:
    """A script's main in-process through run_main (as its CLI runs): its exit code.
    ``argv`` may hold numbers and paths (passed as strings)."""
    from coreLib.cli import run_main
    module = __import__(module_name)
    with pytest.raises(SystemExit) as stop:
        run_main(module.main, [str(arg) for arg in argv], prog=f"{module_name}.py")
    return stop.value.code


def run_detect(argv) -> int:
    """detect.py in-process without progress bars: its exit code."""
    return run_tool("detect", list(argv) + ["--no-progress"])


@pytest.fixture(scope="session")
def tiny_causal_run(tmp_path_factory):
    """A small trained CausalMobileNet and its data, shared by the session:
    ``(SRC, DataSet folder, MODEL_DIR, weights)``. SRC is tool_runner's tiny BII
    source (48 frames of 16x12 per sequence), preprocessed by main.py to 16x16
    depth windows and trained by train.py for 40 steps (its run_config.json
    names the DataSet, as export.py reads it)."""
    from tiny_dataset import write_tiny_source
    root = tmp_path_factory.mktemp("tiny-causal")
    src = write_tiny_source(str(root / "SRC"), frames=48)
    out = str(root / "OUT")
    assert run_tool("main", [src, out, "--image-dim", "16", "--modality", "depth",
                             "--frames", "full", "--batch-size", "8"]) == 0
    dataset_dir = os.path.join(out, "DataSet")
    model_dir = str(root / "model")
    assert run_tool("train", [dataset_dir, "CausalMobileNet", model_dir, "--epochs", "1",
                              "--steps-per-epoch", "40", "--batch-size", "8"]) == 0
    return src, dataset_dir, model_dir, os.path.join(model_dir,
                                                     "CausalMobileNet.weights.h5")
