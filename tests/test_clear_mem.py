"""clear_mem.sh: refuses bad input, drops caches each round, stops cleanly."""

import os
import signal
import subprocess
import time

import pytest


def _script(repo_root):
    return os.path.join(repo_root, "clear_mem.sh")


def test_bad_interval_is_one_line_and_exit_2(repo_root):
    result = subprocess.run(["bash", _script(repo_root), "soon"], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "clear_mem.sh: error: INTERVAL_SECONDS must be a positive whole number, got 'soon'"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_refuses_without_root(repo_root):
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "bash", _script(repo_root), "5"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "needs root" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="the script refuses to run without root")
def test_rounds_then_clean_stop_on_sigterm(repo_root, tmp_path):
    knob = tmp_path / "drop_caches"
    knob.write_text("")
    process = subprocess.Popen(["bash", _script(repo_root), "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "DROP_CACHES_PATH": str(knob)})
    deadline = time.time() + 10
    while knob.read_text() != "1\n" and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # at least one more round
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert knob.read_text() == "1\n"
    assert out.count("Mem:") >= 2          # `free -m` printed every round
    assert out.rstrip().endswith("clear_mem.sh: stopped")
    assert err == ""
