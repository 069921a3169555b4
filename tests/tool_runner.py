"""Runs the entry scripts (main.py, train.py, ...) quickly, as real processes.

Importing TensorFlow costs several seconds per process, which tables of dozens of
script runs cannot afford. A *zygote* process imports TensorFlow once (quietly,
as the scripts do) and then forks one child per run; the child points its file
descriptors 1 and 2 at files, sets ``sys.argv`` and executes the script as
``__main__``. Each run is therefore a real process with its own exit code, its
own stdout/stderr and its own process id (the kill tests SIGKILL it), minus the
import. What the import itself prints is covered by running some scripts as
fresh interpreters (:func:`run_fresh`).

The zygote is single-threaded on the Python side (it multiplexes requests and
finished children with select and WNOHANG), so forking it is safe. Protocol: one
JSON request per line on its stdin, one JSON event per line on its stdout.
"""

import itertools
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Completed:
    """A finished script run."""
    args: List[str]
    returncode: int
    stdout: str
    stderr: str

    def stderr_lines(self) -> List[str]:
        """Non-empty lines of stderr (a progress bar's ``\\r`` updates count as
        one line with the final text)."""
        return [line for line in self.stderr.split("\n") if line.strip()]


@dataclass
class Child:
    """A script started by the zygote (not yet waited for)."""
    request_id: int
    pid: int
    args: List[str]
    stdout_path: str
    stderr_path: str


class ToolRunner:
    """Client of one zygote process.

    Args:
        launch: wraps the zygote command (e.g. ``LocalGcs.popen`` to run every
            child against the local GCS); default ``subprocess.Popen``.
        workdir: folder for the children's stdout/stderr files.
    """

    def __init__(self, workdir: str, launch: Optional[Callable[..., subprocess.Popen]] = None):
        self._workdir = workdir
        self._launch = launch or (lambda args, **kw: subprocess.Popen(args, **kw))
        self._process: Optional[subprocess.Popen] = None
        self._ids = itertools.count()
        self._events: Dict[int, dict] = {}
        self._condition = threading.Condition()
        self._reader: Optional[threading.Thread] = None

    def start(self) -> "ToolRunner":
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
        self._process = self._launch(
            [sys.executable, os.path.abspath(__file__), "zygote"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO_ROOT, env=env)
        self._reader = threading.Thread(target=self._read_events, daemon=True)
        self._reader.start()
        self._wait_event(-1, "ready", timeout=180)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> "ToolRunner":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _read_events(self) -> None:
        for line in self._process.stdout:
            event = json.loads(line)
            with self._condition:
                self._events.setdefault(event["id"], {}).update(event)
                self._condition.notify_all()
        with self._condition:
            self._events.setdefault(-2, {})["eof"] = True
            self._condition.notify_all()

    def _wait_event(self, request_id: int, key: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        with self._condition:
            while key not in self._events.get(request_id, {}):
                if "eof" in self._events.get(-2, {}):
                    raise RuntimeError("the script zygote ended")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {key!r} event for request {request_id}")
                self._condition.wait(left)
            return self._events[request_id]

    def spawn(self, script: str, args: Sequence[str], cwd: Optional[str] = None,
              env: Optional[Dict[str, str]] = None) -> Child:
        """Starts ``script`` (relative to the repository) with ``args``."""
        request_id = next(self._ids)
        stdout_path = os.path.join(self._workdir, f"run-{request_id}.out")
        stderr_path = os.path.join(self._workdir, f"run-{request_id}.err")
        request = {"id": request_id, "script": os.path.join(REPO_ROOT, script),
                   "args": [str(arg) for arg in args], "cwd": cwd or REPO_ROOT,
                   "env": env or {}, "stdout": stdout_path, "stderr": stderr_path}
        self._process.stdin.write((json.dumps(request) + "\n").encode())
        self._process.stdin.flush()
        event = self._wait_event(request_id, "pid", timeout=60)
        return Child(request_id, event["pid"], [script, *request["args"]],
                     stdout_path, stderr_path)

    def finished(self, child: Child) -> bool:
        with self._condition:
            return "code" in self._events.get(child.request_id, {})

    def wait(self, child: Child, timeout: float = 300) -> Completed:
        """Waits for a child; returns its exit code (-9 after SIGKILL) and output."""
        code = self._wait_event(child.request_id, "code", timeout)["code"]
        with open(child.stdout_path, encoding="utf-8", errors="replace") as handle:
            stdout = handle.read()
        with open(child.stderr_path, encoding="utf-8", errors="replace") as handle:
            stderr = handle.read()
        return Completed(child.args, code, stdout, stderr)

    def kill_when(self, child: Child, condition: Callable[[], bool],
                  timeout: float = 240, poll_s: float = 0.002) -> bool:
        """SIGKILLs ``child`` as soon as ``condition()`` holds; False if the child
        ended first. The condition watches files the child writes, so it is polled
        (every ``poll_s``; 0 only yields the CPU, for moments of a few
        milliseconds); the child's exit is awaited as an event."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.finished(child):
                return False
            if condition():
                os.kill(child.pid, signal.SIGKILL)
                # False when the child ended by itself just before the kill.
                return self.wait(child).returncode == -signal.SIGKILL
            time.sleep(poll_s)
        if not self.finished(child):
            os.kill(child.pid, signal.SIGKILL)
        self.wait(child)
        raise TimeoutError(f"{child.args[0]}: the kill point was never reached")

    def run(self, script: str, args: Sequence[str], timeout: float = 300,
            **kwargs) -> Completed:
        """Runs ``script`` to the end."""
        return self.wait(self.spawn(script, args, **kwargs), timeout)


def run_fresh(script: str, args: Sequence[str], cwd: Optional[str] = None,
              timeout: float = 300, launch_args: Callable[[List[str]], List[str]] = None,
              env: Optional[Dict[str, str]] = None) -> Completed:
    """Runs ``script`` in a new interpreter (TensorFlow imported from scratch)."""
    command = [sys.executable, os.path.join(REPO_ROOT, script), *map(str, args)]
    if launch_args:
        command = launch_args(command)
    completed = subprocess.run(command, cwd=cwd or REPO_ROOT, capture_output=True,
                               text=True, timeout=timeout, check=False,
                               env=env or dict(os.environ))
    return Completed(command, completed.returncode, completed.stdout, completed.stderr)


# ---------------------------------------------------------------------------
# A finished tiny pipeline: SRC -> main.py -> train.py -> score.py.

PIPELINE_IMAGE_DIM = 8
PIPELINE_BATCH_SIZE = 2


def build_tiny_pipeline(runner: "ToolRunner", root: str) -> dict:
    """Runs main.py, train.py (DUMMY, one epoch) and score.py on the tiny source.

    Returns:
        Paths (``src``, ``dataset``, ``model_dir``, ``test_json``, ``video_sec``),
        the ``manifest`` and ``runs``: script name -> its :class:`Completed` run
        (stderr is a file, so their progress reports are plain lines).
    """
    # Imported here, not at the top: the zygote runs this file without the
    # repository (coreLib) on its path until it starts.
    from tiny_dataset import write_tiny_source
    src = write_tiny_source(os.path.join(root, "SRC"))
    dataset = os.path.join(root, "out", "DataSet")
    model_dir = os.path.join(root, "model")
    steps = [
        ("main.py", [src, os.path.join(root, "out"), "--image-dim", PIPELINE_IMAGE_DIM,
                     "--batch-size", PIPELINE_BATCH_SIZE, "--shard-size", 3,
                     "--workers", 1]),
        ("train.py", [dataset, "DUMMY", model_dir, "--epochs", 1,
                      "--batch-size", PIPELINE_BATCH_SIZE]),
    ]
    runs = {}
    for script, args in steps:
        runs[script] = runner.run(script, args)
        assert runs[script].returncode == 0, runs[script].stderr[-2000:]
    with open(os.path.join(dataset, "dataset.json")) as handle:
        manifest = json.load(handle)
    test_json = os.path.join(dataset, manifest["splits"]["Test"]["json_name"])
    runs["score.py"] = runner.run("score.py", ["DUMMY", os.path.join(model_dir,
                                                                     "DUMMY.weights.h5"),
                                               test_json])
    assert runs["score.py"].returncode == 0, runs["score.py"].stderr[-2000:]
    return {"src": src, "dataset": dataset, "model_dir": model_dir, "test_json": test_json,
            "manifest": manifest, "runs": runs,
            "video_sec": os.path.join(dataset, "Results", "video_sec_DUMMY.json")}


# ---------------------------------------------------------------------------
# The zygote process.

def _child(request: dict) -> None:
    """In the forked child: run the script as __main__, never return."""
    code = 1
    try:
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for descriptor in (out, err, null):
            os.close(descriptor)
        # Fresh stream objects: the parent's may have been mid-write when forked.
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        sys.argv = [request["script"], *request["args"]]
        sys.path[0] = os.path.dirname(request["script"])
        runpy.run_path(request["script"], run_name="__main__")
        code = 0
    except SystemExit as exit_request:
        value = exit_request.code
        code = value if isinstance(value, int) else (0 if value is None else 1)
        if not isinstance(value, (int, type(None))):
            sys.stderr.write(f"{value}\n")
    except BaseException:  # a traceback, as a fresh interpreter would print it
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _zygote() -> int:
    sys.path.insert(0, REPO_ROOT)
    from coreLib.cli import import_tensorflow_quietly
    import_tensorflow_quietly()
    events = os.fdopen(os.dup(1), "w", buffering=1)
    children: Dict[int, int] = {}  # pid -> request id
    pending = b""  # unparsed request bytes (os.read: select sees no stdio buffer)

    def emit(event: dict) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    # A child's exit wakes the loop at once: SIGCHLD writes a byte into this pipe
    # (signal.set_wakeup_fd), which select watches beside the requests.
    wake_read, wake_write = os.pipe()
    for descriptor in (wake_read, wake_write):
        os.set_blocking(descriptor, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)

    def start(request: dict) -> None:
        pid = os.fork()
        if pid == 0:
            # The script gets a plain process: default SIGCHLD, no wake-up pipe.
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for descriptor in (wake_read, wake_write):
                os.close(descriptor)
            events.close()
            _child(request)
        children[pid] = request["id"]
        emit({"id": request["id"], "pid": pid})

    emit({"id": -1, "ready": True})
    open_input = True
    while open_input or children:
        # The timeout is a safety net only; requests and exits wake select.
        readable, _, _ = select.select([0, wake_read] if open_input else [wake_read],
                                       [], [], 1.0)
        if wake_read in readable:
            while True:
                try:
                    if not os.read(wake_read, 4096):
                        break
                except BlockingIOError:
                    break
        if 0 in readable:
            chunk = os.read(0, 1 << 16)
            open_input = bool(chunk)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                start(json.loads(line))
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            request_id = children.pop(pid, None)
            if request_id is not None:
                emit({"id": request_id, "code": os.waitstatus_to_exitcode(status)})
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["zygote"]:
        sys.exit(_zygote())
    sys.stderr.write("usage: python tests/tool_runner.py zygote  (used by the tests)\n")
    sys.exit(2)
