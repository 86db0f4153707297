"""The ``bastion`` command: one entry point, sub-commands registered by the modules below."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bastion.config import ConfigError


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
    import django

    django.setup()


def build_parser() -> argparse.ArgumentParser:
    from bastion.cli import admin, agent, browser, errors, jobs, pipelines, scanning, server

    parser = argparse.ArgumentParser(
        prog="bastion",
        description="Bastion: scanning, browser tests, pipelines and error tracking.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (server, admin, jobs, agent, scanning, browser, errors, pipelines):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"bastion: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
