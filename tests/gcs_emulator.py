"""A local Google Cloud Storage for the tests, reached through TensorFlow's own gs://.

TensorFlow's built-in GCS filesystem talks only to ``https://www.googleapis.com``
(JSON API, uploads) and ``https://storage.googleapis.com`` (ranged reads) and has
no endpoint setting. So the ``gcp-storage-emulator`` package is served here with
TLS on 127.0.0.1:443 under a self-signed certificate naming both hosts, and every
process that uses gs:// runs with a hosts file mapping them to 127.0.0.1:

- The emulator runs in its own process (inside a TensorFlow process it deadlocks:
  TF holds the interpreter lock during I/O), in a private network namespace, so
  its port 443 never clashes with another test session or the host's network.
- A client command runs in that network namespace (``nsenter``) and in a private
  mount namespace (``unshare``) where a temporary hosts file is bind-mounted over
  /etc/hosts; the real /etc/hosts never changes. This needs root.
- The pytest process itself reaches the emulator over a Unix socket (file system
  paths ignore network namespaces) to create buckets and to read objects back
  independently of TensorFlow.

The emulator needs four fixes for TensorFlow's client, applied here by wrapping
its request handling in the launcher process (site-packages is not edited):
resumable-upload ``Location`` URLs say https, ``Transfer-Encoding: chunked``
request bodies are decoded (TF sends the chunk framing *and* a Content-Length;
read by length the upload is corrupted), a missing body is an empty object (TF
makes "directories" as empty ``dir/`` objects) and ``Expect: 100-continue`` is
answered at once (otherwise every upload waits a second). In-memory mode only:
the on-disk mode loses ``dir/`` markers.

Usage (as root):
    python tests/gcs_emulator.py [--bucket NAME]... [-- COMMAND ARG...]
starts a local GCS with the buckets, runs COMMAND inside it (default: a
write/read self-check through tf.io.gfile) and stops it again.
"""

import argparse
import contextlib
import fcntl
import http.client
import json
import os
import select
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Dict, List, Optional, Sequence
from urllib.parse import quote

GCS_HOSTS = ("www.googleapis.com", "storage.googleapis.com")
TLS_PORT = 443
REQUEST_TIMEOUT_SECONDS = 60
START_TIMEOUT_SECONDS = 60
REQUIRE_ENV = "ACTRECOG_REQUIRE_GCS"

# Mounts the hosts file ($0) over /etc/hosts, then becomes the command ("$@").
_HOSTS_MOUNT_SCRIPT = 'mount --bind "$0" /etc/hosts && exec "$@"'


# ---------------------------------------------------------------------------
# Client side: used by the tests (and by `python tests/gcs_emulator.py`).
# ---------------------------------------------------------------------------

def unavailable_reason() -> Optional[str]:
    """Why a local GCS cannot run on this machine, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "local GCS needs Linux namespaces"
    if os.geteuid() != 0:
        return "local GCS needs root (private mount namespace and port 443)"
    for tool in ("unshare", "nsenter", "mount", "openssl"):
        if shutil.which(tool) is None:
            return f"local GCS needs the '{tool}' command"
    try:
        import gcp_storage_emulator  # noqa: F401
    except ImportError:
        return "local GCS needs the gcp-storage-emulator package"
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
         "mount --bind /etc/hosts /etc/hosts"],
        capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["failed"])[-1]
        return f"cannot create private network/mount namespaces: {reason}"
    return None


class _UnixHttpConnection(http.client.HTTPConnection):
    """HTTP over the emulator's Unix control socket."""

    def __init__(self, socket_path: str, timeout: float = 30):
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._socket_path)


class LocalGcs:
    """One emulator process, and the means to run commands against it.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, buckets: Sequence[str] = ()):
        self._initial_buckets = list(buckets)
        self._workdir: Optional[str] = None
        self._process: Optional[subprocess.Popen] = None
        self.cert_path = ""
        self.hosts_path = ""
        self.control_path = ""
        self.log_path = ""

    # -- life cycle ---------------------------------------------------------

    def start(self) -> "LocalGcs":
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self._workdir = tempfile.mkdtemp(prefix="local-gcs-")
        self.cert_path = os.path.join(self._workdir, "cert.pem")
        key_path = os.path.join(self._workdir, "key.pem")
        self.hosts_path = os.path.join(self._workdir, "hosts")
        self.control_path = os.path.join(self._workdir, "control.sock")
        self.log_path = os.path.join(self._workdir, "emulator.log")
        _make_certificate(self.cert_path, key_path)
        with open(self.hosts_path, "w", encoding="ascii") as handle:
            handle.write("127.0.0.1 localhost\n")
            handle.write(f"127.0.0.1 {' '.join(GCS_HOSTS)}\n")
        command = ["unshare", "--net", sys.executable, os.path.abspath(__file__),
                   "serve", "--cert", self.cert_path, "--key", key_path,
                   "--control", self.control_path]
        for bucket in self._initial_buckets:
            command += ["--bucket", bucket]
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        stdout = self._process.stdout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stdout], [], [], 0.2)
            if ready:
                line = stdout.readline()
                if line.strip() == b"ready":
                    return
                if not line:
                    break
            if self._process.poll() is not None:
                break
        log = self.read_log()
        self.stop()
        raise RuntimeError(f"local GCS did not start:\n{log}")

    def stop(self) -> None:
        """Ends the emulator process (its in-memory data is gone) and cleans up."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process.stdout.close()
            self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> "LocalGcs":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self._process.pid

    def read_log(self) -> str:
        with contextlib.suppress(OSError):
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        return ""

    # -- running commands against it -----------------------------------------

    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """The environment for a gs:// client process: ``extra`` on top of this
        process's, then the local GCS settings on top (they always win: a
        CURL_CA_BUNDLE inherited from the machine must not replace ours)."""
        env = dict(os.environ)
        env.update(extra or {})
        env.update({
            "CURL_CA_BUNDLE": self.cert_path,
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "local-gcs",
            "NO_GCE_CHECK": "true",
            # Without these: stale exists() after a delete, minutes of retrying.
            "GCS_STAT_CACHE_MAX_AGE": "0",
            "GCS_RETRY_CONFIG_MAX_RETRIES": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def command(self, args: Sequence[str]) -> List[str]:
        """``args`` wrapped to run in the emulator's network and a private mount
        namespace with the hosts file. nsenter, unshare and sh all exec, so the
        resulting process id is that of ``args[0]`` (it can be signalled)."""
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net",
                "unshare", "--mount", "--propagation", "private",
                "sh", "-c", _HOSTS_MOUNT_SCRIPT, self.hosts_path, *args]

    def run(self, args: Sequence[str], env: Optional[Dict[str, str]] = None,
            timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
        """subprocess.run of ``args`` against this GCS; output captured as text."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(args), env=self.env(env), timeout=timeout,
                              check=False, **kwargs)

    def popen(self, args: Sequence[str], env: Optional[Dict[str, str]] = None,
              **kwargs) -> subprocess.Popen:
        """subprocess.Popen of ``args`` against this GCS."""
        return subprocess.Popen(self.command(args), env=self.env(env), **kwargs)

    def python(self, code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Runs Python ``code`` (with ``args`` as sys.argv[1:]) against this GCS."""
        return self.run([sys.executable, "-c", code, *args], **kwargs)

    # -- direct access through the emulator's API (no TensorFlow) ------------

    def _request(self, method: str, path: str, body: Optional[bytes] = None,
                 headers: Optional[Dict[str, str]] = None) -> bytes:
        connection = _UnixHttpConnection(self.control_path)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status >= 300:
            raise RuntimeError(f"local GCS: {method} {path} -> {response.status} "
                               f"{data[:200]!r}")
        return data

    def create_bucket(self, name: Optional[str] = None) -> str:
        """Creates a bucket through the emulator's JSON API; returns its name."""
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        self._request("POST", "/storage/v1/b?project=local",
                      json.dumps({"name": name}).encode(),
                      {"Content-Type": "application/json"})
        return name

    def list_objects(self, bucket: str, prefix: str = "") -> List[str]:
        """Sorted names of all objects in ``bucket`` under ``prefix``."""
        path = f"/storage/v1/b/{bucket}/o"
        if prefix:
            path += f"?prefix={quote(prefix, safe='')}"
        listing = json.loads(self._request("GET", path))
        return sorted(item["name"] for item in listing.get("items", []))

    def read_object(self, bucket: str, name: str) -> bytes:
        """The bytes of one object."""
        return self._request(
            "GET", f"/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media")

    def write_object(self, bucket: str, name: str, data: bytes) -> None:
        """Uploads one object (a simple media upload)."""
        self._request(
            "POST",
            f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name, safe='')}",
            data, {"Content-Type": "application/octet-stream"})

    def set_serving(self, serving: bool) -> None:
        """Stops (connections refused) or resumes the TLS endpoint; the stored
        objects stay, as a GCS outage leaves them."""
        self._request("POST", f"/_control/serving?on={int(serving)}")


def _make_certificate(cert_path: str, key_path: str) -> None:
    """A self-signed certificate whose SAN names both Google storage hosts."""
    alt_names = ",".join(f"DNS:{host}" for host in GCS_HOSTS)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-sha256",
         "-days", "7", "-subj", f"/CN={GCS_HOSTS[0]}",
         "-addext", f"subjectAltName={alt_names}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", key_path, "-out", cert_path],
        check=True, capture_output=True)


# ---------------------------------------------------------------------------
# Server side: `python tests/gcs_emulator.py serve ...` (started by LocalGcs).
# ---------------------------------------------------------------------------

def _bring_loopback_up() -> None:
    """Sets IFF_UP on 'lo' (down in a fresh network namespace), no iproute2."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    layout = "16sH14x"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        current = fcntl.ioctl(probe, siocgifflags, struct.pack(layout, b"lo", 0))
        flags = struct.unpack(layout, current)[1]
        fcntl.ioctl(probe, siocsifflags, struct.pack(layout, b"lo", flags | iff_up))


def _read_body(request_handler) -> Optional[bytes]:
    """Reads a request body. Chunked framing wins over Content-Length (RFC 9112
    6.3): TF sends both, and reading by length returns framing, not data."""
    headers = request_handler.headers
    rfile = request_handler.rfile
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        parts = []
        while True:
            size_line = rfile.readline()
            if not size_line:
                raise ConnectionError("request body ended inside chunked framing")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Optional trailers end with an empty line.
                while rfile.readline().strip():
                    pass
                return b"".join(parts)
            parts.append(rfile.read(size))
            rfile.readline()
    length = headers.get("Content-Length")
    if length:
        return rfile.read(int(length))
    return None


def _patch_emulator():
    """Applies the four fixes to the emulator's request objects; returns the
    request handler class to serve with."""
    from http import HTTPStatus

    from gcp_storage_emulator import server as emulator_server

    emulator_server._read_raw_data = _read_body
    base_request = emulator_server.Request

    class TlsRequest(base_request):
        """A request that knows it came over https and whose missing body is an
        empty one (TF's empty ``dir/`` objects otherwise crash the handlers)."""

        def __init__(self, request_handler, method):
            super().__init__(request_handler, method)
            if getattr(request_handler, "over_tls", False):
                # Resumable-upload Location and media links are built from these.
                self._base_url = "https://" + self._base_url[len("http://"):]
                self._full_url = self._base_url + self._path

        @property
        def data(self):
            value = base_request.data.fget(self)
            content_type = self.get_header("Content-Type") or ""
            if value is None and not content_type.startswith("application/json"):
                return b""
            return value

    emulator_server.Request = TlsRequest

    storage_lock = threading.Lock()

    class Handler(emulator_server.RequestHandler):
        """Serialises storage access and answers ``Expect: 100-continue``."""

        timeout = REQUEST_TIMEOUT_SECONDS
        over_tls = False

        def setup(self):
            self.over_tls = isinstance(self.request, ssl.SSLSocket)
            if self.over_tls:
                self.request.settimeout(self.timeout)
                self.request.do_handshake()
            super().setup()

        def parse_request(self):
            if not super().parse_request():
                return False
            if (self.headers.get("Expect") or "").lower() == "100-continue":
                # http.server only does this for HTTP/1.1 responders; the
                # emulator answers as HTTP/1.0, so curl would wait a second.
                self.send_response_only(HTTPStatus.CONTINUE)
                self.end_headers()
            return True

        def _dispatch(self, method):
            if method == "POST" and self.path.startswith("/_control/serving"):
                if self.over_tls:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                self.server.app.set_serving(self.path.endswith("on=1"))
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with storage_lock:
                emulator_server.Router(self).handle(method)

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_PUT(self):
            self._dispatch("PUT")

        def do_DELETE(self):
            self._dispatch("DELETE")

        def do_PATCH(self):
            self._dispatch("PATCH")

    return Handler


class _ThreadingServerBase(socketserver.ThreadingMixIn):
    daemon_threads = True
    app = None

    def handle_error(self, request, client_address):
        # A client killed mid-request is routine in the kill tests: one line.
        error = sys.exc_info()[1]
        sys.stderr.write(f"local GCS: request failed: {error!r}\n")


class _TlsServer(_ThreadingServerBase, socketserver.TCPServer):
    allow_reuse_address = True

    def __init__(self, address, handler, context: ssl.SSLContext):
        self._context = context
        super().__init__(address, handler)

    def get_request(self):
        connection, address = self.socket.accept()
        # The handshake runs in the handler thread, not in the accept loop.
        return (self._context.wrap_socket(connection, server_side=True,
                                          do_handshake_on_connect=False), address)


class _UnixServer(_ThreadingServerBase, socketserver.UnixStreamServer):
    pass


class _Emulator:
    """The in-memory store with a TLS endpoint (switchable) and a control socket."""

    def __init__(self, cert_path: str, key_path: str, control_path: str,
                 buckets: Sequence[str]):
        from gcp_storage_emulator.handlers.buckets import create_bucket
        from gcp_storage_emulator.storage import Storage

        handler = _patch_emulator()
        storage = Storage(use_memory_fs=True, data_dir=tempfile.gettempdir())
        for bucket in buckets:
            create_bucket(bucket, storage)
        self._handler = lambda *args: handler(storage, *args)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_path, key_path)
        self._tls: Optional[_TlsServer] = None
        self._lock = threading.Lock()
        self._control = _UnixServer(control_path, self._handler)
        self._control.app = self
        threading.Thread(target=self._control.serve_forever, daemon=True).start()
        self.set_serving(True)

    def set_serving(self, serving: bool) -> None:
        with self._lock:
            if serving and self._tls is None:
                self._tls = _TlsServer(("127.0.0.1", TLS_PORT), self._handler,
                                       self._context)
                threading.Thread(target=self._tls.serve_forever, daemon=True).start()
            elif not serving and self._tls is not None:
                self._tls.shutdown()
                self._tls.server_close()
                self._tls = None


def _serve(args: argparse.Namespace) -> int:
    _bring_loopback_up()
    _Emulator(args.cert, args.key, args.control, args.bucket)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    return 0


_SELF_CHECK = """
import sys
import tensorflow as tf
path = sys.argv[1] + "/self-check/hello.txt"
with tf.io.gfile.GFile(path, "wb") as handle:
    handle.write(b"hello from the local GCS")
with tf.io.gfile.GFile(path, "rb") as handle:
    assert handle.read() == b"hello from the local GCS"
print("local GCS self-check passed:", path)
"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        serve = argparse.ArgumentParser(prog="gcs_emulator.py serve",
                                        description="internal: the emulator process")
        serve.add_argument("--cert", required=True, help="TLS certificate (PEM)")
        serve.add_argument("--key", required=True, help="TLS private key (PEM)")
        serve.add_argument("--control", required=True, help="Unix control socket path")
        serve.add_argument("--bucket", action="append", default=[],
                           help="bucket to create at start (repeatable)")
        return _serve(serve.parse_args(argv[1:]))
    command = []
    if "--" in argv:
        command = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(
        prog="gcs_emulator.py",
        usage="%(prog)s [-h] [--bucket NAME]... [-- COMMAND ARG...]",
        description="Runs COMMAND against a local GCS (gcp-storage-emulator behind "
                    "TLS, reached through TensorFlow's own gs://); default COMMAND: "
                    "a write/read self-check. Needs root.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--bucket", action="append", default=[], metavar="NAME",
                        help="bucket to create (repeatable; none given: 'bucket')")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        sys.stderr.write(f"gcs_emulator.py: error: {reason}\n")
        return 2
    buckets = args.bucket or ["bucket"]
    command = command or [sys.executable, "-c", _SELF_CHECK, f"gs://{buckets[0]}"]
    with LocalGcs(buckets) as gcs:
        return gcs.run(command, capture_output=False, timeout=None).returncode


if __name__ == "__main__":
    sys.exit(main())
