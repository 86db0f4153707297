"""``bastion agent start``: run an agent process against a Bastion server."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    agent = sub.add_parser("agent", help="run a job agent")
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    start = agent_sub.add_parser("start", help="register with a server and run jobs")
    start.add_argument(
        "--server",
        default=os.environ.get("BASTION_URL", "http://127.0.0.1:8000"),
        help="the server's URL (default: $BASTION_URL or http://127.0.0.1:8000)",
    )
    start.add_argument(
        "--token",
        default=os.environ.get("BASTION_AGENT_TOKEN", ""),
        help="the cluster's agent token (default: $BASTION_AGENT_TOKEN)",
    )
    start.add_argument("--tags", default="queue=default", help="e.g. queue=default,os=linux")
    start.add_argument("--name", default="", help="the agent's name (default: host-pid)")
    start.add_argument(
        "--disconnect-after-job", action="store_true", help="run one job, then disconnect"
    )
    start.add_argument(
        "--cancel-grace-period",
        type=float,
        default=5.0,
        help="seconds between SIGTERM and SIGKILL when a job is canceled (default: 5)",
    )
    start.add_argument(
        "--hooks-path",
        type=Path,
        default=None,
        help="directory of agent hooks: environment, pre-command, post-command, pre-exit",
    )
    start.add_argument(
        "--verification-key",
        type=Path,
        default=None,
        help="the cluster's public key (PEM): run only command steps signed with its pair",
    )
    start.add_argument(
        "--spawn",
        type=int,
        default=1,
        metavar="N",
        help="run N agents (each its own process and registration, named NAME-1..NAME-N)",
    )
    start.set_defaults(handler=cmd_agent_start)


def cmd_agent_start(args: argparse.Namespace) -> int:
    from bastion.agent.worker import AgentOptions, AgentWorker, parse_tags
    from bastion.core.redaction import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s agent: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not args.token:
        print("bastion: an agent token is needed (--token or BASTION_AGENT_TOKEN)", file=sys.stderr)
        return 2
    if args.hooks_path is not None and not args.hooks_path.is_dir():
        print(f"bastion: --hooks-path: {args.hooks_path} is not a directory", file=sys.stderr)
        return 2
    verification_key = None
    if args.verification_key is not None:
        from bastion.pipelines.signing import SigningError, load_verification_key

        try:
            verification_key = load_verification_key(args.verification_key)
        except SigningError as exc:
            print(f"bastion: --verification-key: {exc}", file=sys.stderr)
            return 2
    try:
        tags = parse_tags(args.tags)
    except ValueError as exc:
        print(f"bastion: --tags: {exc}", file=sys.stderr)
        return 2
    if args.spawn != 1:
        return _spawn(args)
    worker = AgentWorker(
        AgentOptions(
            server=args.server,
            token=args.token,
            tags=tags,
            name=args.name,
            disconnect_after_job=args.disconnect_after_job,
            grace_s=max(0.0, args.cancel_grace_period),
            hooks_path=args.hooks_path.resolve() if args.hooks_path else None,
            verification_key=verification_key,
        )
    )
    worker.install_signal_handlers()
    return worker.run()


def _spawn(args: argparse.Namespace) -> int:
    from bastion.agent.spawn import MAX_SPAWN, child_names, run_spawned

    if not 1 <= args.spawn <= MAX_SPAWN:
        print(f"bastion: --spawn: between 1 and {MAX_SPAWN}", file=sys.stderr)
        return 2
    agent_args = ["--server", args.server, "--tags", args.tags]
    agent_args += ["--cancel-grace-period", str(args.cancel_grace_period)]
    if args.disconnect_after_job:
        agent_args.append("--disconnect-after-job")
    if args.hooks_path is not None:
        agent_args += ["--hooks-path", str(args.hooks_path.resolve())]
    if args.verification_key is not None:
        agent_args += ["--verification-key", str(args.verification_key.resolve())]
    return run_spawned(agent_args, child_names(args.name, args.spawn), args.token)
