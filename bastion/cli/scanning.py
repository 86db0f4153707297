"""``bastion scan URL``: run a scan from the command line, no server and no database needed."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from bastion.scanning.engine.context import ScanOptions
from bastion.scanning.engine.definitions import Severity
from bastion.scanning.engine.policy import LOOPBACK_DEFAULT
from bastion.scanning.engine.runner import Progress, ScanResult, run_scan

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def register(sub: Any) -> None:
    scan = sub.add_parser(
        "scan",
        help="scan a web application (lightning: TLS, headers, cookies, exposures, canary probes)",
        description="Scan URL and print the findings. Exit status: 0 no finding at or above "
        "--fail-on, 1 there is one, 2 the scan could not run.",
    )
    scan.add_argument("url", help="base URL of the target, e.g. https://staging.example.com/")
    scan.add_argument("--profile", default="lightning", help="scan profile (default: lightning)")
    scan.add_argument("--json", type=Path, metavar="FILE", help="write findings as JSON")
    scan.add_argument("--sarif", type=Path, metavar="FILE", help="write SARIF 2.1.0")
    scan.add_argument(
        "--fail-on",
        type=Severity.parse,
        metavar="SEVERITY",
        help="exit 1 when a finding is at or above this severity (info, low, medium, high, critical)",
    )
    scan.add_argument(
        "--allow-private",
        action="store_true",
        help="allow private and loopback addresses (labs); link-local and metadata stay refused",
    )
    scan.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only URLs matching this glob (repeatable)",
    )
    scan.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="never URLs matching this glob (repeatable)",
    )
    scan.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this check of the profile (repeatable)",
    )
    scan.add_argument("--rate", type=float, metavar="N", help="at most N requests per second")
    scan.add_argument("--concurrency", type=int, metavar="N", help="at most N requests at once")
    scan.add_argument(
        "--ca-file", type=Path, metavar="PEM", help="extra CA certificates the TLS check trusts"
    )
    scan.add_argument(
        "--http-port",
        type=int,
        metavar="PORT",
        help="port of the plain-HTTP listener for the HTTPS redirect check",
    )
    scan.add_argument("--no-progress", action="store_true", help="no progress bar")
    scan.set_defaults(handler=cmd_scan)


def allow_hosts_from_env() -> tuple[str, ...]:
    """BASTION_SCAN_ALLOW_HOSTS, read as bastion.config reads it (comma-separated, loopback
    by default), without loading the server configuration: the scan command needs none."""
    raw = os.environ.get("BASTION_SCAN_ALLOW_HOSTS")
    if raw is None:
        return LOOPBACK_DEFAULT
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def build_options(args: argparse.Namespace) -> ScanOptions:
    return ScanOptions(
        target=args.url,
        profile=args.profile,
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        allow_hosts=allow_hosts_from_env(),
        allow_private=args.allow_private,
        checks=tuple(args.check),
        trust_roots=args.ca_file,
        http_port=args.http_port,
        rate_per_s=args.rate,
        concurrency=args.concurrency,
    )


async def _run_with_progress(options: ScanOptions, show: bool) -> ScanResult:
    if not show:
        return await run_scan(options)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import (
        Progress as Bar,
    )

    with Bar(
        TextColumn("[bold]scan[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("checks · {task.fields[requests]} requests · {task.fields[findings]} findings"),
        TimeElapsedColumn(),
        transient=True,
        console=_stderr_console(),
    ) as bar:
        task = bar.add_task("scan", total=None, requests=0, findings=0)

        def update(p: Progress) -> None:
            bar.update(
                task,
                total=p.checks_total,
                completed=p.checks_done,
                requests=p.requests_sent,
                findings=p.findings,
            )

        return await run_scan(options, on_progress=update)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def print_findings(result: ScanResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    findings = sorted(result.findings, key=lambda f: (-f.severity, f.type, f.url))
    if not findings:
        console.print(f"No findings on {result.target}.", highlight=False)
    elif not console.is_terminal:  # logs and pipes: one line per finding
        for f in findings:
            param = f" [{f.parameter}]" if f.parameter else ""
            print(
                f"{f.severity.label.upper():8} {f.type} {f.definition.cwe_id} {f.method} "
                f"{f.url}{param}: {f.evidence[:160]}"
            )
    else:
        table = Table(title=f"{len(findings)} findings on {result.target}")
        for column in ("severity", "type", "CWE", "url", "parameter", "evidence"):
            table.add_column(column, overflow="fold")
        for f in findings:
            table.add_row(
                f.severity.label,
                f.type,
                f.definition.cwe_id,
                f.url,
                f.parameter or "",
                f.evidence[:120],
            )
        console.print(table)
    err = _stderr_console()
    for outcome in result.outcomes:
        if outcome.status != "ok":
            err.print(
                f"[yellow]check {outcome.name}: {outcome.status}: {outcome.message}[/]",
                markup=True,
                highlight=False,
            )
    err.print(
        f"{result.requests_sent} requests in {result.duration_s:.1f}s ({result.profile} profile)",
        highlight=False,
    )


def cmd_scan(args: argparse.Namespace) -> int:
    from bastion.scanning.engine.report import to_json, to_sarif

    try:
        options = build_options(args)
        result = asyncio.run(
            _run_with_progress(options, show=not args.no_progress and sys.stderr.isatty())
        )
    except ValueError as exc:  # unknown profile or check
        print(f"bastion scan: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        args.json.write_text(json.dumps(to_json(result), indent=2) + "\n", encoding="utf-8")
    if args.sarif:
        args.sarif.write_text(json.dumps(to_sarif(result), indent=2) + "\n", encoding="utf-8")
    if result.error:
        print(f"bastion scan: {result.error}", file=sys.stderr)
        return EXIT_ERROR
    print_findings(result)
    if args.fail_on is not None and any(f.severity >= args.fail_on for f in result.findings):
        return EXIT_FINDINGS
    return EXIT_OK
