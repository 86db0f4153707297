"""Lightning scan vs Wapiti on the vulnerable lab: wall time, requests, findings.

Both tools scan the same lab (tests/labs/vulnerable.py) on 127.0.0.1 in the same run, each as
its own process. Requests are counted by the lab itself, so both are counted the same way.
Wapiti runs with its modules comparable to the lightning profile (passive header/cookie/CSP
checks, HTTPS redirect, methods, plus the quick open-redirect, reflected-XSS and backup-file
probes), in its own venv under bench/.venvs/wapiti (created on first run, gitignored).

A Wapiti finding counts as found by Bastion when Bastion reports the mapped type:
site-wide classes (headers, cookies, CSP, transport, methods) on the same origin, per-parameter
classes (XSS, open redirect) on the same path and parameter, files on the same path.

Prints a table and ends with:
RESULT lightning speedup_vs_wapiti=<x> findings=<n> wapiti_findings_missed=<n>
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.labs import vulnerable  # noqa: E402
from tests.labs.server import LabRequest, LabResponse, serve  # noqa: E402

VENVS = ROOT / "bench" / ".venvs"
WAPITI_VENV = VENVS / "wapiti"
WAPITI_MODULES = "cookieflags,csp,http_headers,https_redirect,methods,redirect,xss,backup"
BASTION_RUNS = 3

# Wapiti category -> (Bastion finding types, how to match)
MAPPING: dict[str, tuple[set[str], str]] = {
    "Content Security Policy Configuration": (
        {
            "csp-missing",
            "csp-report-only",
            "csp-unsafe-inline",
            "csp-unsafe-eval",
            "csp-wildcard-source",
            "csp-missing-directive",
        },
        "site",
    ),
    "Clickjacking Protection": ({"clickjacking"}, "site"),
    "MIME Type Confusion": ({"nosniff-missing"}, "site"),
    "HTTP Strict Transport Security (HSTS)": ({"hsts-missing", "hsts-weak"}, "site"),
    "HttpOnly Flag cookie": ({"cookie-no-httponly"}, "site"),
    "Secure Flag cookie": ({"cookie-no-secure"}, "site"),
    "Unencrypted Channels": ({"https-not-enforced"}, "site"),
    "HTTP Methods": ({"http-trace-enabled", "http-dangerous-method"}, "site"),
    "Open Redirect": ({"open-redirect"}, "parameter"),
    "Reflected Cross Site Scripting": ({"reflected-xss"}, "parameter"),
    "Cross Site Scripting": ({"reflected-xss"}, "parameter"),
    "Backup file": ({"exposed-backup-file"}, "path"),
}


class CountingLab:
    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, request: LabRequest) -> LabResponse:
        with self._lock:
            self.count += 1
        if request.path == "/logout":  # Wapiti crawls it (it is excluded by -x, but be safe)
            return LabResponse(302, b"", None, [("Location", "/")])
        return vulnerable.app(request)

    def take(self) -> int:
        with self._lock:
            value, self.count = self.count, 0
        return value


def ensure_wapiti() -> Path:
    wapiti = WAPITI_VENV / "bin" / "wapiti"
    if wapiti.exists():
        return wapiti
    VENVS.mkdir(parents=True, exist_ok=True)
    (VENVS / ".gitignore").write_text("*\n")
    print("creating the Wapiti venv (pip install wapiti3)...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(WAPITI_VENV)], check=True)
    subprocess.run([str(WAPITI_VENV / "bin" / "pip"), "install", "-q", "wapiti3"], check=True)
    return wapiti


def run_bastion(base: str, out: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "bastion"),
            "scan",
            base,
            "--profile",
            "lightning",
            "--json",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bastion scan failed: {proc.stderr}")
    return elapsed


def run_wapiti(wapiti: Path, base: str, out: Path, home: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [
            str(wapiti),
            "-u",
            base,
            "-m",
            WAPITI_MODULES,
            "--scope",
            "folder",
            "-x",
            base + "logout",
            "-f",
            "json",
            "-o",
            str(out),
            "--flush-session",
            "-v",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "HOME": str(home)},
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"wapiti failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def wapiti_findings(report: dict[str, object]) -> list[tuple[str, str, str]]:
    found = []
    for section in ("vulnerabilities", "anomalies", "additionals"):
        for category, items in report.get(section, {}).items():  # type: ignore[attr-defined]
            for item in items:
                found.append((category, item["path"], item.get("parameter") or ""))
    return sorted(set(found))


def covered(wapiti: tuple[str, str, str], ours: list[dict[str, object]], base: str) -> bool:
    category, path, parameter = wapiti
    if category not in MAPPING:
        return False
    types, how = MAPPING[category]
    for finding in ours:
        if finding["type"] not in types:
            continue
        our_path = urlsplit(str(finding["url"])).path
        if how == "site" and str(finding["url"]).startswith(base.rstrip("/")):
            return True
        if how == "path" and our_path == path:
            return True
        if how == "parameter" and our_path == path and finding["parameter"] == parameter:
            return True
    return False


def main() -> int:
    wapiti = ensure_wapiti()
    lab = CountingLab()
    with tempfile.TemporaryDirectory() as tmp, serve(lab) as base:
        folder = Path(tmp)
        times, requests = [], []
        for i in range(BASTION_RUNS):
            times.append(run_bastion(base, folder / f"bastion{i}.json"))
            requests.append(lab.take())
        ours = json.loads((folder / "bastion0.json").read_text())["findings"]
        wapiti_time = run_wapiti(wapiti, base, folder / "wapiti.json", folder)
        wapiti_requests = lab.take()
        theirs = wapiti_findings(json.loads((folder / "wapiti.json").read_text()))

    bastion_time = statistics.median(times)
    missed = [w for w in theirs if not covered(w, ours, base)]
    speedup = wapiti_time / bastion_time
    print(f"lab: tests/labs/vulnerable.py at {base}")
    print(f"wapiti modules: {WAPITI_MODULES}")
    print()
    print(f"{'tool':<22}{'wall time (s)':>15}{'requests':>10}{'findings':>10}")
    print(
        f"{'bastion lightning':<22}{bastion_time:>15.2f}{statistics.median(requests):>10.0f}{len(ours):>10}"
    )
    print(
        f"{'wapiti ' + wapiti_version():<22}{wapiti_time:>15.2f}{wapiti_requests:>10}{len(theirs):>10}"
    )
    print(
        f"(bastion: median of {BASTION_RUNS} runs, each a fresh `bastion scan` process; "
        f"runs: {', '.join(f'{t:.2f}' for t in times)})"
    )
    print()
    print("wapiti findings and whether bastion reported them:")
    for w in theirs:
        mark = "missed" if w in missed else "found "
        print(f"  {mark} {w[0]} {w[1]} {w[2]}".rstrip())
    print()
    print(
        f"RESULT lightning speedup_vs_wapiti={speedup:.1f} findings={len(ours)} "
        f"wapiti_findings_missed={len(missed)}"
    )
    return 0


def wapiti_version() -> str:
    python = WAPITI_VENV / "bin" / "python"
    code = "import importlib.metadata as m; print(m.version('wapiti3'))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    sys.exit(main())
