"""Browser-runner benchmark: Bastion's runner vs the same steps as a plain Playwright script.

A 20-test suite (5 kinds of test x 4: a form, a login, a list with scripts, drag and drop,
frames; 108 steps in all) runs against the lab site (a separate process on 127.0.0.1), in one
system Chromium with a fresh context per test, at concurrency 1 and 4, for each of:

* bastion: ``BrowserSession.run_many`` (parsed test files, fallback resolution, variables, event
  capture, per-step results; no video, no screenshots so both sides do the same work);
* plain: the same steps hand-written with Playwright's async API and ``expect``.

Measured: wall time of the suite (browser launch excluded), per-step overhead at concurrency 1
((bastion - plain) / steps), and the peak RSS of this process plus its children (the Playwright
driver and Chromium), sampled every 100 ms. Each configuration runs ``--reps`` times in
alternating order and the median is reported. Ends with one line:
``RESULT browser overhead_pct=... speedup_c4=...``

Usage: ``.venv/bin/python bench/browser.py [--reps 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from playwright.async_api import Browser, Page, async_playwright, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bastion.browser.runner.session import CHROMIUM, LAUNCH_ARGS, BrowserSession, RunOptions
from bastion.browser.spec import BrowserTest, load_test

TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "form": [
        {"type": "#name", "value": "Ada"},
        {"select": "#color", "value": "g"},
        {"check": "#agree"},
        {"click": "#go"},
        {"assert_text": "Hello, Ada (g) agreed", "target": "#out"},
        {"click": "text=Next page"},
        {"assert_url": "/form/next", "match": "contains"},
    ],
    "login": [
        {"type": "#username", "value": "ada"},
        {"type": "#password", "value": "s3cret-pass"},
        {"click": "button[type=submit]"},
        {"assert_text": "Welcome, ada", "target": "#welcome"},
    ],
    "list": [
        {"store": "count", "source": "count", "target": ".item"},
        {"execute_js": "document.getElementById('picked').textContent = 'picked'"},
        {"assert_js": "return document.querySelectorAll('.item').length === 3"},
        {"assert_text": "beta", "target": "#items", "match": "contains"},
    ],
    "dnd": [
        {"drag": "#source", "to": "#zone"},
        {"assert_text": "dropped card", "target": "#zone"},
    ],
    "frames": [
        {"switch_frame": "#inner"},
        {"click": "#inner-btn"},
        {"assert_text": "inner clicked", "target": "#where"},
        {"action": "switch_frame", "value": "top"},
        {"assert_text": "outer page", "target": "#where"},
    ],
}
START = {"form": "/form", "login": "/login", "list": "/list", "dnd": "/dnd", "frames": "/frames"}


async def plain_form(page: Page, base: str) -> None:
    await page.goto(base + "/form")
    await page.fill("#name", "Ada")
    await page.select_option("#color", "g")
    await page.check("#agree")
    await page.click("#go")
    await expect(page.locator("#out")).to_have_text("Hello, Ada (g) agreed")
    await page.click("text=Next page")
    await expect(page).to_have_url(re.compile("/form/next"))


async def plain_login(page: Page, base: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#username", "ada")
    await page.fill("#password", "s3cret-pass")
    await page.click("button[type=submit]")
    await expect(page.locator("#welcome")).to_have_text("Welcome, ada")


async def plain_list(page: Page, base: str) -> None:
    await page.goto(base + "/list")
    await page.locator(".item").count()
    await page.evaluate("document.getElementById('picked').textContent = 'picked'")
    assert await page.evaluate("() => document.querySelectorAll('.item').length === 3")
    await expect(page.locator("#items")).to_contain_text("beta")


async def plain_dnd(page: Page, base: str) -> None:
    await page.goto(base + "/dnd")
    await page.drag_and_drop("#source", "#zone")
    await expect(page.locator("#zone")).to_have_text("dropped card")


async def plain_frames(page: Page, base: str) -> None:
    await page.goto(base + "/frames")
    inner = page.frame_locator("#inner")
    await inner.locator("#inner-btn").click()
    await expect(inner.locator("#where")).to_have_text("inner clicked")
    await expect(page.locator("#where")).to_have_text("outer page")


PLAIN: dict[str, Callable[[Page, str], Awaitable[None]]] = {
    "form": plain_form,
    "login": plain_login,
    "list": plain_list,
    "dnd": plain_dnd,
    "frames": plain_frames,
}
KINDS = list(TEMPLATES) * 4
STEPS = sum(len(TEMPLATES[kind]) + 1 for kind in KINDS)  # +1: the start URL


def suite() -> list[BrowserTest]:
    return [
        load_test({"name": f"{kind} {n}", "start_url": START[kind], "steps": TEMPLATES[kind]})
        for n, kind in enumerate(KINDS, start=1)
    ]


class TreeMonitor:
    """Peak summed RSS and CPU seconds of this process and its descendants (sampled)."""

    def __init__(self) -> None:
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._cpu_start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _tree(self) -> list[psutil.Process]:
        me = psutil.Process(os.getpid())
        return [me, *me.children(recursive=True)]

    def _sample_once(self) -> None:
        total = 0
        for process in self._tree():
            try:
                total += process.memory_info().rss
                times = process.cpu_times()
            except psutil.Error:
                continue
            self._cpu[process.pid] = times.user + times.system
        self.peak = max(self.peak, total)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self._sample_once()

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values()) - sum(self._cpu_start.values())

    def __enter__(self) -> TreeMonitor:
        self._sample_once()
        self._cpu_start = dict(self._cpu)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample_once()


async def run_bastion(base: str, concurrency: int) -> tuple[float, int, float]:
    tests = suite()
    async with BrowserSession(video=False) as session:
        with TreeMonitor() as rss:
            started = time.perf_counter()
            results = await session.run_many(
                tests,
                RunOptions(base_url=base, record_video=False, final_screenshot=False),
                concurrency,
            )
            wall = time.perf_counter() - started
    failed = [r for r in results if not r.passed]
    if failed:
        raise SystemExit(f"bastion run failed: {failed[0].test}: {failed[0].error}")
    return wall, rss.peak, rss.cpu_seconds


async def run_plain(base: str, concurrency: int) -> tuple[float, int, float]:
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(LAUNCH_ARGS)
        )
        gate = asyncio.Semaphore(concurrency)

        async def one(kind: str) -> None:
            async with gate:
                context = await browser.new_context(viewport={"width": 1280, "height": 800})
                # Generous: on a loaded shared machine a 10 s wait fails the plain side
                # instead of measuring it (a wait that succeeds costs the same either way).
                context.set_default_timeout(30_000)
                page = await context.new_page()
                await PLAIN[kind](page, base)
                await context.close()

        with TreeMonitor() as rss:
            started = time.perf_counter()
            await asyncio.gather(*(one(kind) for kind in KINDS))
            wall = time.perf_counter() - started
        await browser.close()
    return wall, rss.peak, rss.cpu_seconds


def start_lab() -> tuple[subprocess.Popen[str], str]:
    lab = subprocess.Popen(
        [sys.executable, "-m", "tests.labs.browser_site.server"],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert lab.stdout is not None
    url = lab.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        lab.kill()
        raise SystemExit(f"lab site did not start: {url!r}")
    return lab, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    lab, base = start_lab()
    runners = {"bastion": run_bastion, "plain": run_plain}
    walls: dict[tuple[str, int], list[float]] = {}
    peaks: dict[tuple[str, int], list[int]] = {}
    cpus: dict[tuple[str, int], list[float]] = {}
    try:
        for rep in range(args.reps):
            order = ["bastion", "plain"] if rep % 2 == 0 else ["plain", "bastion"]
            for concurrency in (1, 4):
                for name in order:
                    wall, peak, cpu = asyncio.run(runners[name](base, concurrency))
                    walls.setdefault((name, concurrency), []).append(wall)
                    peaks.setdefault((name, concurrency), []).append(peak)
                    cpus.setdefault((name, concurrency), []).append(cpu)
                    print(
                        f"  rep {rep + 1} {name:8s} c={concurrency}: {wall:6.2f} s, "
                        f"CPU {cpu:6.1f} s, peak RSS {peak / 2**20:6.0f} MiB, "
                        f"load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    finally:
        lab.terminate()
        lab.wait(timeout=10)
    med = {key: statistics.median(values) for key, values in walls.items()}
    mem = {key: max(values) for key, values in peaks.items()}
    print()
    print(f"20 tests, {STEPS} steps, {os.cpu_count()} CPUs, median of {args.reps}")
    print(f"{'':14s}{'bastion':>12s}{'plain':>12s}{'overhead':>12s}")
    for concurrency in (1, 4):
        b, p = med[("bastion", concurrency)], med[("plain", concurrency)]
        print(f"wall c={concurrency:<8d}{b:11.2f}s{p:11.2f}s{(b - p) / p * 100:11.1f}%")
    for concurrency in (1, 4):
        b, p = mem[("bastion", concurrency)], mem[("plain", concurrency)]
        print(f"peak RSS c={concurrency:<4d}{b / 2**20:9.0f}MiB{p / 2**20:9.0f}MiB")
    cores = os.cpu_count() or 1
    cpu_c1 = statistics.median(cpus[("bastion", 1)])
    busy = cpu_c1 / med[("bastion", 1)]
    print(
        f"CPU at c=1: bastion {cpu_c1:.1f} s of CPU in {med[('bastion', 1)]:.1f} s "
        f"({busy:.2f} cores busy): c=4 can be at most {max(1.0, min(4.0, cores / busy)):.2f}x faster "
        f"on {cores} cores"
    )
    for name in ("bastion", "plain"):
        step_cpu = statistics.median(cpus[(name, 1)]) / STEPS * 1000
        print(f"CPU per step at c=1, {name}: {step_cpu:.1f} ms")
    # CPU time is steadier than wall time on a shared machine: report both.
    cpu_overhead = (cpu_c1 / statistics.median(cpus[("plain", 1)]) - 1) * 100
    print(f"CPU overhead at c=1: {cpu_overhead:.1f}% (load average {os.getloadavg()[0]:.1f})")
    per_step = (med[("bastion", 1)] - med[("plain", 1)]) / STEPS * 1000
    print(f"per-step overhead at c=1: {per_step:.1f} ms")
    speedup_b = med[("bastion", 1)] / med[("bastion", 4)]
    speedup_p = med[("plain", 1)] / med[("plain", 4)]
    print(f"speed-up c=4 vs c=1: bastion {speedup_b:.2f}x, plain {speedup_p:.2f}x")
    overhead = (med[("bastion", 1)] - med[("plain", 1)]) / med[("plain", 1)] * 100
    print(f"RESULT browser overhead_pct={overhead:.1f} speedup_c4={speedup_b:.2f}")


if __name__ == "__main__":
    main()
