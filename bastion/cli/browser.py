"""``bastion test``: import Selenium IDE / Ghost Inspector tests, run test files locally.

``bastion test run`` uses the same runner as the agents, in the system Chromium, with no server
and no database; it exits 0 when every test passed, 1 when one failed and 2 on invalid input.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.browser.spec import BrowserTest, ModuleResolver

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def register(sub: Any) -> None:
    test = sub.add_parser("test", help="browser tests: import and run test files")
    test_sub = test.add_subparsers(dest="test_command", metavar="ACTION", required=True)

    imp = test_sub.add_parser("import", help="convert a .side project or a Ghost Inspector JSON")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--out", type=Path, default=Path(), help="folder for the YAML files (default: .)"
    )
    imp.set_defaults(handler=cmd_import)

    run = test_sub.add_parser("run", help="run test files locally in Chromium")
    run.add_argument(
        "files", type=Path, nargs="+", metavar="FILE", help="test YAML/JSON, .side or GI JSON"
    )
    run.add_argument("--base-url", default="", help="resolve relative URLs against this")
    run.add_argument("--json", type=Path, help="write the results as JSON here")
    run.add_argument("--junit", type=Path, help="write a JUnit XML report here")
    run.add_argument("--artifacts", type=Path, help="keep screenshots and videos in this folder")
    run.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a variable")
    run.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME",
        help="a secret variable read from the environment variable NAME (never printed)",
    )
    run.add_argument("--concurrency", type=int, default=1, help="tests run at once (default 1)")
    run.add_argument("--no-video", action="store_true", help="do not record videos")
    run.add_argument("--screenshots", action="store_true", help="a screenshot after every step")
    run.add_argument("--quiet", action="store_true", help="print only the summary")
    run.set_defaults(handler=cmd_run)

    export = test_sub.add_parser("export", help="write a test as a standalone Playwright script")
    export.add_argument("file", type=Path)
    export.add_argument("--base-url", default="")
    export.add_argument("--out", type=Path, help="the .py file (default: stdout)")
    export.set_defaults(handler=cmd_export)


def cmd_import(args: argparse.Namespace) -> int:
    from bastion.browser.importers import ImportFormatError, import_file, slug
    from bastion.browser.spec import dump_test

    try:
        result = import_file(args.file)
    except ImportFormatError as exc:
        print(f"bastion: {exc}", file=sys.stderr)
        return EXIT_INVALID
    args.out.mkdir(parents=True, exist_ok=True)
    for test in result.tests:
        path = args.out / f"{slug(test.name)}.yaml"
        path.write_text(dump_test(test), encoding="utf-8")
        print(f"wrote {path} ({len(test.steps)} steps)")
    for warning in result.warnings:
        print(f"note: {warning}")
    for miss in result.unmapped:
        print(f"unmapped: {miss}")
    print(
        f"{len(result.tests)} test(s) imported from {result.source_format}, "
        f"{len(result.unmapped)} command(s) not mapped"
    )
    return EXIT_OK


def _pairs(items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--var needs NAME=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def _is_native(data: Any) -> bool:
    steps = data.get("steps") if isinstance(data, dict) else None
    return isinstance(steps, list) and not any(
        isinstance(s, dict) and "command" in s for s in steps
    )


def _load(paths: list[Path]) -> list[tuple[BrowserTest, Path, ModuleResolver]]:
    """Every test in the files, with the folder uploads are relative to and its modules."""
    import json

    from bastion.browser.importers import import_data
    from bastion.browser.spec import DirectoryModules, load_test_file

    tests: list[tuple[BrowserTest, Path, ModuleResolver]] = []
    for path in paths:
        if path.suffix in (".side", ".json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            if not _is_native(data):
                result = import_data(data)
                for miss in result.unmapped:
                    print(f"unmapped: {miss}", file=sys.stderr)
                modules = result.modules()
                tests.extend(
                    (test, path.parent, modules) for test in result.tests if not test.import_only
                )
                continue
        tests.append((load_test_file(path), path.parent, DirectoryModules(path.parent)))
    return tests


def cmd_run(args: argparse.Namespace) -> int:
    from bastion.browser.spec import SpecError

    try:
        variables = _pairs(args.var)
        secrets = {}
        for name in args.secret:
            if name not in os.environ:
                raise ValueError(f"--secret {name}: the environment variable {name} is not set")
            secrets[name] = os.environ[name]
        tests = _load(args.files)
    except (SpecError, ValueError, OSError) as exc:
        print(f"bastion: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if not tests:
        print("bastion: no test to run", file=sys.stderr)
        return EXIT_INVALID
    return asyncio.run(_run_all(args, tests, variables, secrets))


async def _run_all(
    args: argparse.Namespace,
    tests: list[tuple[BrowserTest, Path, ModuleResolver]],
    variables: dict[str, str],
    secrets: dict[str, str],
) -> int:
    from bastion.browser.runner import RunResult, StepResult, to_junit
    from bastion.browser.runner.session import BrowserSession, RunOptions

    def progress(test_name: str) -> Any:
        def show(step: StepResult) -> None:
            if args.quiet:
                return
            mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[step.status]
            label = step.name or step.action
            detail = f"  {step.error}" if step.error else ""
            print(
                f"  [{mark}] {test_name} {step.index} {label} ({step.duration_ms:.0f} ms){detail}",
                flush=True,
            )

        return show

    gate = asyncio.Semaphore(max(1, args.concurrency))
    results: list[RunResult] = []
    async with BrowserSession(video=not args.no_video) as session:

        async def one(
            position: int, test: BrowserTest, root: Path, modules: ModuleResolver
        ) -> RunResult:
            async with gate:
                artifacts = None
                if args.artifacts is not None:
                    artifacts = args.artifacts / f"{position:03d}-{_slug(test.name)}"
                options = RunOptions(
                    base_url=args.base_url,
                    artifacts_dir=artifacts,
                    record_video=not args.no_video and args.artifacts is not None,
                    final_screenshot=args.artifacts is not None,
                    screenshot_every_step=args.screenshots,
                    environment_variables=variables,
                    secrets=secrets,
                    modules=modules,
                    files_root=root,
                    on_step=progress(test.name),
                )
                if not args.quiet:
                    print(f"> {test.name}", flush=True)
                return await session.run(test, options)

        results = list(
            await asyncio.gather(*(one(i, t, r, m) for i, (t, r, m) in enumerate(tests, start=1)))
        )
    for result in results:
        verdict = "PASSED" if result.passed else "FAILED"
        reason = f": {result.error}" if result.error else ""
        print(f"{verdict} {result.test} in {result.duration_ms / 1000:.1f} s{reason}")
    if args.json is not None:
        import json

        args.json.write_text(json.dumps([r.to_dict() for r in results], indent=2), encoding="utf-8")
    if args.junit is not None:
        args.junit.write_text(to_junit(results), encoding="utf-8")
    passed = sum(1 for r in results if r.passed)
    print(f"{passed}/{len(results)} test(s) passed")
    return EXIT_OK if passed == len(results) else EXIT_FAILED


def _slug(name: str) -> str:
    from bastion.browser.importers import slug

    return slug(name)


def cmd_export(args: argparse.Namespace) -> int:
    from bastion.browser.importers.playwright_script import export_playwright
    from bastion.browser.spec import DirectoryModules, ModuleNotFound, SpecError, load_test_file

    try:
        test = load_test_file(args.file)
        script = export_playwright(test, args.base_url, DirectoryModules(args.file.parent))
    except (SpecError, ModuleNotFound, OSError) as exc:
        print(f"bastion: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.out is None:
        sys.stdout.write(script)
    else:
        args.out.write_text(script, encoding="utf-8")
        print(f"wrote {args.out}")
    return EXIT_OK
