"""A real lvs stack on loopback for the gateway tests: lvs-server, lvs-worker
(the fake model) and lvs-gateway as child processes on free ports, with their
logs in a temporary directory, and small HTTP helpers.

Binaries come from the environment (set by ctest): LVS_SERVER_BIN,
LVS_WORKER_BIN, LVS_GATEWAY_BIN; LVS_PYTHON_STUBS_DIR holds the generated
gRPC stubs.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, timeout=30.0, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"127.0.0.1:{port}{path} not ready after {timeout} s")


class Stack:
    """server + worker + gateway; use as a context manager."""

    def __init__(self, server_flags=(), worker_flags=(), gateway_flags=(), workers=1,
                 model_flags=("--model=fake", "--x264-preset=ultrafast")):
        self.dir = tempfile.mkdtemp(prefix="lvs-gateway-test-")
        self.procs = []
        self.grpc_port = free_port()
        self.worker_port = free_port()
        self.metrics_port = free_port()
        self.http_port = free_port()
        self.server_flags, self.worker_flags = list(server_flags), list(worker_flags)
        self.gateway_flags, self.workers = list(gateway_flags), workers
        self.model_flags = list(model_flags)

    def _start(self, name, argv):
        with open(os.path.join(self.dir, name + ".log"), "wb") as log:
            p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.procs.append(p)
        return p

    def __enter__(self):
        server = self._start("server", [
            os.environ["LVS_SERVER_BIN"], f"--listen=127.0.0.1:{self.grpc_port}",
            f"--worker-listen=127.0.0.1:{self.worker_port}",
            f"--metrics-listen=127.0.0.1:{self.metrics_port}",
            f"--data-dir={self.dir}/data"] + self.server_flags)
        wait_http(self.metrics_port, "/readyz", proc=server)
        for i in range(self.workers):
            self._start(f"worker{i}", [
                os.environ["LVS_WORKER_BIN"], f"--server=127.0.0.1:{self.worker_port}",
                f"--name=w{i}", "--metrics-listen=127.0.0.1:0"] + self.model_flags +
                self.worker_flags)
        self.wait_worker()
        gw = self._start("gateway", [
            os.environ["LVS_GATEWAY_BIN"], f"--server=127.0.0.1:{self.grpc_port}",
            f"--listen=127.0.0.1:{self.http_port}"] + self.gateway_flags)
        wait_http(self.http_port, "/healthz", proc=gw)
        return self

    def wait_worker(self, timeout=300.0):
        """Waits until the server counts a connected worker (model loaded)."""
        end = time.time() + timeout
        while time.time() < end:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a process exited with {p.returncode}")
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
                text = r.read().decode()
            if any(line.startswith('lvs_workers{kind="generator",state="idle"}') and float(line.split()[-1]) >= 1
                   for line in text.splitlines()):
                return
            time.sleep(0.2)
        raise RuntimeError("no worker connected")

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if exc[0] is not None:
            for name in sorted(os.listdir(self.dir)):
                if name.endswith(".log"):
                    with open(os.path.join(self.dir, name), errors="replace") as f:
                        print(f"---- {name} (tail)\n" + "".join(f.readlines()[-30:]))
        return False

    @property
    def base(self):
        return f"http://127.0.0.1:{self.http_port}"

    def request(self, method, path, body=None, headers=None, timeout=30):
        """Returns (status, headers dict (lower-case names), body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        conn.close()
        return out

    def json(self, method, path, body=None, headers=None):
        status, h, data = self.request(method, path, body, headers)
        return status, json.loads(data) if data else None

    def wait_status(self, vid, statuses, timeout=60, headers=None):
        end = time.time() + timeout
        while time.time() < end:
            status, v = self.json("GET", f"/v1/videos/{vid}", headers=headers)
            if status == 200 and v["status"] in statuses:
                return v
            time.sleep(0.1)
        raise AssertionError(f"video {vid} not in {statuses} after {timeout} s")
