"""Ingest benchmark: Bastion vs Bugsink, side by side, same events, same load, same machine.

20,000 events (about 30 distinct issues) are produced by the real sentry-sdk — captured with a
custom transport once, then compressed like the SDK does (brotli, quality 4) — and replayed at
concurrency 16 against each server on a free loopback port:

* Bastion: gunicorn ``bastion.wsgi:application`` (2 workers x 8 threads), fresh BASTION_DATA_DIR
  (SQLite, WAL). A 200 means the event is in the process's fsynced ingest journal; "grouped"
  means a row in errors_event, stored by the writer thread moments later.
* Bugsink (``pip install bugsink`` into its own venv, set up here): gunicorn ``bugsink.wsgi`` with
  the same worker settings, plus its digest process (``bugsink-runsnappea``), its event quotas
  lifted. "Grouped" means counted by its digest (``projects_project.digested_event_count``).

Measured for each: accepted events/s (200s over the sending time), p50/p99 latency, the time
from the last 200 until every accepted event is grouped and visible, grouped events/s (events
over the time from the first request to the last grouped event), and the peak RSS of the
server's processes. Ends with one line:
``RESULT ingest accepted_ratio=... grouped_ratio=... p99_ms=... lost=...``

Before the measured run, each server gets ``--warmup`` other events (not measured), grouped.

The load generator is a minimal HTTP/1.1 client (``KeepAliveClient``): it shares the two cores
with the server under test, and ``http.client`` took 0.16 ms of CPU per request where this one
takes 0.04 ms. Each of its 16 connections is reopened after 100 requests
(``BENCH_RECONNECT_EVERY``), as SDK clients come and go: 16 connections opened in the same
millisecond are nearly all accepted by whichever gunicorn worker wakes first (measured 15/1,
12/4, 11/3/1/1), and a keep-alive connection stays on its worker, so one worker — one GIL —
served most of the run and the result swung by 2x from run to run. Reopened connections spread
over the workers. Both servers get the same client. Bastion's server also closes a
keep-alive connection itself after 100 requests (``bastion.gunicorn_worker``, as ``bastion up``
runs it), so SDK clients that never reconnect are spread the same way.

Usage: ``.venv/bin/python bench/ingest.py [--events 20000] [--concurrency 16] [--skip-bugsink]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path

import brotli

from bastion.gunicorn_worker import WORKER_CLASS

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
BUGSINK_VENV = Path(os.environ.get("BUGSINK_VENV", "/tmp/bastion-bench/bugsink-venv"))
# Each client connection is reopened after this many requests (0: never). See the module doc.
RECONNECT_EVERY = int(os.environ.get("BENCH_RECONNECT_EVERY", "100"))
WORKERS, THREADS = (
    int(os.environ.get("BENCH_WORKERS", "2")),
    int(os.environ.get("BENCH_THREADS", "8")),
)


# --- events from the real SDK ---------------------------------------------------------------


def capture_envelopes(count: int, distinct: int = 30) -> list[bytes]:
    """``count`` error envelopes serialized by sentry-sdk, spread over ``distinct`` issues."""
    import sentry_sdk
    from sentry_sdk.envelope import Envelope
    from sentry_sdk.transport import Transport

    captured: list[bytes] = []

    class CaptureTransport(Transport):
        def capture_envelope(self, envelope: Envelope) -> None:
            captured.append(envelope.serialize())

    sentry_sdk.init(
        dsn="http://0123456789abcdef0123456789abcdef@127.0.0.1:9/1",
        transport=CaptureTransport,
        release="shop@1.4.2",
        environment="production",
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    kinds = [type(f"CheckoutError{n:02d}", (Exception,), {}) for n in range(distinct)]

    def handler(kind: type[Exception], order: int, user: int) -> None:
        cart = {"items": order % 7, "total": order * 3.5, "password": "hunter2"}
        raise kind(f"order {order} failed for cart {cart['items']}")

    for n in range(count):
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("region", ("eu", "us", "ap")[n % 3])
            scope.set_user({"id": str(n % 500), "email": f"user{n % 500}@example.test"})
            scope.add_breadcrumb(category="http", message=f"GET /cart/{n}", level="info")
            scope.set_context(
                "request", {"url": f"http://shop.test/checkout/{n}", "method": "POST"}
            )
            try:
                handler(kinds[n % distinct], n, n % 500)
            except Exception:  # noqa: BLE001 - every one of them is the event we want
                sentry_sdk.capture_exception()
    sentry_sdk.get_client().close()
    return [brotli.compress(body, quality=4) for body in captured]


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(port: int, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer within {timeout}s")


@dataclass
class Server:
    name: str
    port: int
    project_id: str
    public_key: str
    processes: list[subprocess.Popen[bytes]]
    count_grouped: Callable[[], int]
    workdir: Path

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _spawn(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        conn.close()


def _digested(db: Path) -> int:
    # Bugsink keeps at most 10,000 stored events per project (older ones are evicted), so count
    # what its digest has processed, not the rows left.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT coalesce(sum(digested_event_count), 0) FROM projects_project")
        return int(row.fetchone()[0])
    finally:
        conn.close()


def start_bastion() -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="bench-bastion-"))
    port = free_port()
    env = {
        **os.environ,
        "BASTION_DATA_DIR": str(workdir),
        "BASTION_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
        "BASTION_PORT": str(port),
        "DJANGO_SETTINGS_MODULE": "bastion.settings",
    }
    env.pop("BASTION_DATABASE_URL", None)
    subprocess.run(
        [str(VENV_BIN / "bastion"), "migrate"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    setup = (
        "import django; django.setup()\n"
        "from bastion.core.access import Principal\n"
        "from bastion.core import services\n"
        "from bastion.errors.services import create_dsn_key, public_key_of\n"
        "p = Principal.system('bench')\n"
        "org = services.create_organization(p.actor, name='Bench', slug='bench', owner=None)\n"
        "project = services.create_project(p, org, slug='shop', name='Shop')\n"
        "key = create_dsn_key(p, project)\n"
        "print(project.pk, public_key_of(key))\n"
    )
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-c", setup],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    project_id, public_key = out.stdout.split()[-2:]
    proc = _spawn(
        [
            str(VENV_BIN / "gunicorn"),
            "bastion.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--threads",
            str(THREADS),
            "--worker-class",
            WORKER_CLASS,  # as `bastion up` runs it
            "--log-level",
            "warning",
        ],
        env,
        ROOT,
        workdir / "server.log",
    )
    wait_http(port, "/healthz")
    db = workdir / "bastion.sqlite3"
    return Server(
        "bastion", port, project_id, public_key, [proc], lambda: _count(db, "errors_event"), workdir
    )


def ensure_bugsink_venv() -> Path:
    python = BUGSINK_VENV / "bin" / "python"
    if not (BUGSINK_VENV / "bin" / "bugsink-manage").exists():
        subprocess.run([sys.executable, "-m", "venv", str(BUGSINK_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "bugsink"], check=True, timeout=900
        )
    return BUGSINK_VENV / "bin"


def start_bugsink() -> Server:
    bin_dir = ensure_bugsink_venv()
    workdir = Path(tempfile.mkdtemp(prefix="bench-bugsink-"))
    port = free_port()
    subprocess.run(
        [
            str(bin_dir / "bugsink-create-conf"),
            "--template=singleserver",
            f"--host=127.0.0.1:{port}",
            f"--base-dir={workdir}",
            f"--output-file={workdir / 'bugsink_conf.py'}",
        ],
        check=True,
        cwd=workdir,
        capture_output=True,
    )
    with (workdir / "bugsink_conf.py").open("a") as conf:
        conf.write(
            f'\nALLOWED_HOSTS = ["*"]\nBUGSINK["BASE_URL"] = "http://127.0.0.1:{port}"\n'
            # Its default quotas (1,000 events per 5 minutes) would answer 429 to most of the run.
            "for _name in ('PROJECT_PER_5_MINUTES', 'PROJECT_PER_HOUR', 'PROJECT_PER_MONTH',\n"
            "              '5_MINUTES', 'HOUR', 'MONTH'):\n"
            "    BUGSINK['MAX_EVENTS_PER_' + _name] = 10**9\n"
        )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bugsink_conf", "PYTHONPATH": str(workdir)}
    for args in (["migrate"], ["migrate", "--database=snappea"]):
        subprocess.run(
            [str(bin_dir / "bugsink-manage"), *args],
            env=env,
            cwd=workdir,
            check=True,
            capture_output=True,
            timeout=300,
        )
    setup = (
        "from teams.models import Team; from projects.models import Project\n"
        "t = Team.objects.create(name='bench')\n"
        "p = Project.objects.create(team=t, name='shop', slug='shop')\n"
        "print(p.id, p.sentry_key.hex)\n"
    )
    out = subprocess.run(
        [str(bin_dir / "bugsink-manage"), "shell", "-c", setup],
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    project_id, public_key = out.stdout.split()[-2:]
    server = _spawn(
        [
            str(bin_dir / "gunicorn"),
            "bugsink.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--threads",
            str(THREADS),
            "--worker-class",
            "gthread",
            "--log-level",
            "warning",
        ],
        env,
        workdir,
        workdir / "server.log",
    )
    digest = _spawn([str(bin_dir / "bugsink-runsnappea")], env, workdir, workdir / "snappea.log")
    wait_http(port, "/")
    db = workdir / "db.sqlite3"
    return Server(
        "bugsink",
        port,
        project_id,
        public_key,
        [server, digest],
        lambda: _digested(db),
        workdir,
    )


# --- load and measurement -------------------------------------------------------------------


def _tree(pids: list[int]) -> list[int]:
    """The processes and all their descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo, seen = [], list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_rss_kib(pids: list[int]) -> int:
    """Resident memory of the processes and all their descendants."""
    total = 0
    for pid in _tree(pids):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def tree_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes and all their live descendants. On a shared,
    loaded machine this moves far less than wall-clock rates do: CPU per event is the figure to
    compare between changes."""
    ticks = 0
    for pid in _tree(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    name: str
    sent: int = 0
    accepted: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    send_seconds: float = 0.0
    group_wait_seconds: float = 0.0
    grouped: int = 0
    peak_rss_mib: float = 0.0
    server_cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0

    @property
    def accepted_eps(self) -> float:
        return self.accepted / self.send_seconds if self.send_seconds else 0.0

    @property
    def cpu_ms_per_event(self) -> float:
        return self.server_cpu_seconds * 1000 / self.grouped if self.grouped else 0.0

    @property
    def grouped_eps(self) -> float:
        total = self.send_seconds + self.group_wait_seconds
        return self.grouped / total if total else 0.0


def warm_up(server: Server, bodies: list[bytes], concurrency: int, timeout: float) -> int:
    """Send the warm-up events (not measured) and wait until they are grouped."""
    run = replay(server, bodies, concurrency, timeout, already_grouped=0)
    return run.grouped


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client for the replay.

    ``http.client`` spends ~0.2 ms of CPU per request building headers and parsing the reply
    with the email package; on this 2-core machine the load generator's CPU is taken from the
    server under test. This client sends pre-built request bytes and reads the status line and
    the body by Content-Length (or chunks), nothing else — the same requests, a fraction of the
    client's CPU, for both servers.
    """

    def __init__(self, port: int, reconnect_every: int = 0, timeout: float = 60.0) -> None:
        self.port = port
        self.reconnect_every = reconnect_every
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.sent_on_connection = 0

    def post(self, request: bytes) -> int:
        """Send one request; its status, or 0 when the connection failed (it is reopened)."""
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.sent_on_connection = 0
            self.sock.sendall(request)
            status = self._read_response()
            self.sent_on_connection += 1
            if self.reconnect_every and self.sent_on_connection >= self.reconnect_every:
                self.close()
            return status
        except (OSError, ValueError):
            self.close()
            return 0

    def _read_response(self) -> int:
        head_end = self._fill_until(b"\r\n\r\n")
        head = self.buffer[:head_end].decode("latin-1")
        self.buffer = self.buffer[head_end + 4 :]
        status = int(head[9:12])
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
        }
        if fields.get("transfer-encoding", "").lower() == "chunked":
            self._skip_chunks()
        else:
            self._skip(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status

    def _recv(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += data

    def _fill_until(self, marker: bytes) -> int:
        for _ in range(10_000):
            index = self.buffer.find(marker)
            if index >= 0:
                return index
            self._recv()
        raise ValueError("no end of the response head")

    def _skip(self, length: int) -> None:
        for _ in range(10_000):
            if len(self.buffer) >= length:
                self.buffer = self.buffer[length:]
                return
            self._recv()
        raise ValueError("response body never completed")

    def _skip_chunks(self) -> None:
        for _ in range(10_000):
            line_end = self._fill_until(b"\r\n")
            size = int(self.buffer[:line_end].split(b";")[0], 16)
            self.buffer = self.buffer[line_end + 2 :]
            self._skip(size + 2)
            if size == 0:
                return
        raise ValueError("too many chunks")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buffer = b""


def replay(
    server: Server,
    bodies: list[bytes],
    concurrency: int,
    group_timeout: float,
    already_grouped: int = 0,
) -> Run:
    run = Run(server.name)
    lock = threading.Lock()
    next_index = iter(range(len(bodies)))
    head = (
        f"POST /api/{server.project_id}/envelope/ HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/x-sentry-envelope\r\n"
        "Content-Encoding: br\r\n"
        "X-Sentry-Auth: Sentry sentry_version=7, sentry_client=sentry.python/bench, "
        f"sentry_key={server.public_key}\r\n"
        "Content-Length: "
    ).encode()
    stop_sampling = threading.Event()
    pids = [p.pid for p in server.processes]

    def sample_rss() -> None:
        while not stop_sampling.wait(0.25):
            run.peak_rss_mib = max(run.peak_rss_mib, tree_rss_kib(pids) / 1024)

    def worker() -> None:
        client = KeepAliveClient(server.port, RECONNECT_EVERY)
        statuses: list[int] = []
        latencies: list[float] = []
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            body = bodies[index]
            request = b"%s%d\r\n\r\n%s" % (head, len(body), body)
            started = time.perf_counter()
            status = client.post(request)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses.append(status)
        client.close()
        with lock:
            run.sent += len(statuses)
            run.latencies_ms.extend(latencies)
            for status in statuses:
                run.statuses[status] = run.statuses.get(status, 0) + 1
            run.accepted += statuses.count(200)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    cpu_before = tree_cpu_seconds(pids)
    client_before = time.process_time()
    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.send_seconds = time.monotonic() - started
    run.client_cpu_seconds = time.process_time() - client_before
    last_200 = time.monotonic()
    deadline = last_200 + group_timeout
    while True:
        run.grouped = server.count_grouped() - already_grouped
        if run.grouped >= run.accepted or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    run.group_wait_seconds = time.monotonic() - last_200
    run.server_cpu_seconds = tree_cpu_seconds(pids) - cpu_before
    stop_sampling.set()
    sampler.join(timeout=5)
    run.peak_rss_mib = max(run.peak_rss_mib, tree_rss_kib(pids) / 1024)
    return run


def table(runs: list[Run]) -> str:
    rows = [
        ("", *[r.name for r in runs]),
        ("events sent", *[str(r.sent) for r in runs]),
        ("accepted (200)", *[str(r.accepted) for r in runs]),
        ("statuses", *[json.dumps(r.statuses) for r in runs]),
        ("accepted events/s", *[f"{r.accepted_eps:.1f}" for r in runs]),
        ("latency p50 ms", *[f"{r.percentile(0.50):.1f}" for r in runs]),
        ("latency p99 ms", *[f"{r.percentile(0.99):.1f}" for r in runs]),
        ("grouped", *[str(r.grouped) for r in runs]),
        ("grouped after last 200 s", *[f"{r.group_wait_seconds:.2f}" for r in runs]),
        ("grouped events/s", *[f"{r.grouped_eps:.1f}" for r in runs]),
        ("peak RSS MiB", *[f"{r.peak_rss_mib:.0f}" for r in runs]),
        ("server CPU ms per event", *[f"{r.cpu_ms_per_event:.2f}" for r in runs]),
        # The load generator shares the machine's cores with the server.
        (
            "client CPU ms per event",
            *[f"{r.client_cpu_seconds * 1000 / max(r.sent, 1):.2f}" for r in runs],
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--group-timeout", type=float, default=1800.0)
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured events first")
    parser.add_argument("--skip-bugsink", action="store_true")
    parser.add_argument("--skip-bastion", action="store_true", help="measure Bugsink alone")
    args = parser.parse_args(argv)

    started = time.monotonic()
    captured = capture_envelopes(args.events + args.warmup)
    warm, bodies = captured[: args.warmup], captured[args.warmup :]
    print(
        f"captured {len(bodies)} envelopes from sentry-sdk in {time.monotonic() - started:.1f}s "
        f"({sum(map(len, bodies)) / len(bodies):.0f} bytes each, brotli)",
        flush=True,
    )
    runs: list[Run] = []
    starters: list[Callable[[], Server]] = []
    if not args.skip_bastion:
        starters.append(start_bastion)
    if not args.skip_bugsink:
        starters.append(start_bugsink)
    for start in starters:
        server = start()
        try:
            print(f"{server.name}: warming up on port {server.port} ...", flush=True)
            grouped = warm_up(server, warm, args.concurrency, args.group_timeout)
            print(f"{server.name}: replaying ...", flush=True)
            runs.append(
                replay(
                    server, bodies, args.concurrency, args.group_timeout, already_grouped=grouped
                )
            )
        finally:
            server.stop()
            print(f"(server files in {server.workdir})")
        print(table(runs[-1:]), flush=True)
    print()
    print(table(runs))
    if args.skip_bastion:
        return 0  # nothing of ours to compare
    ours = runs[0]
    theirs = runs[1] if len(runs) > 1 else None
    accepted_ratio = (
        ours.accepted_eps / theirs.accepted_eps if theirs and theirs.accepted_eps else 0.0
    )
    grouped_ratio = ours.grouped_eps / theirs.grouped_eps if theirs and theirs.grouped_eps else 0.0
    lost = ours.accepted - ours.grouped
    print(
        f"RESULT ingest accepted_ratio={accepted_ratio:.2f} grouped_ratio={grouped_ratio:.2f} "
        f"p99_ms={ours.percentile(0.99):.1f} lost={lost}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
