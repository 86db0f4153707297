"""Server-side commands: up, worker, scheduler, mailsink, migrate, manage (Django passthrough)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import Any

from bastion.cli import setup_django


def register(sub: Any) -> None:
    up = sub.add_parser(
        "up", help="migrate, then run the server, worker, scheduler, mail sink and a local agent"
    )
    up.add_argument("--no-agent", action="store_true", help="do not start the local agent")
    up.set_defaults(handler=cmd_up)

    worker = sub.add_parser("worker", help="run background tasks (notifications, reports)")
    worker.add_argument("--interval", type=float, default=1.0)
    worker.set_defaults(handler=cmd_worker)

    scheduler = sub.add_parser("scheduler", help="run the scheduler (one leader at a time)")
    scheduler.add_argument("--interval", type=float, default=1.0)
    scheduler.set_defaults(handler=cmd_scheduler)

    mailsink = sub.add_parser("mailsink", help="run the SMTP sink (the fake inbox)")
    mailsink.add_argument("--host", default=None)
    mailsink.add_argument("--port", type=int, default=None)
    mailsink.set_defaults(handler=cmd_mailsink)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(handler=cmd_migrate)

    manage = sub.add_parser("manage", help="run a Django management command")
    manage.add_argument("args", nargs=argparse.REMAINDER)
    manage.set_defaults(handler=cmd_manage)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def cmd_migrate(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1)
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["bastion manage", *args.args])
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.management import call_command

    call_command("db_worker", interval=args.interval, no_startup_delay=True)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    setup_django()
    from bastion.core import scheduler

    scheduler.run(_stop_on_signals(), interval_s=args.interval)
    return 0


def cmd_mailsink(args: argparse.Namespace) -> int:
    setup_django()
    from django.conf import settings

    from bastion.browser.mail.sink import serve_forever

    host = args.host or settings.CONFIG.smtp_sink_host
    port = settings.CONFIG.smtp_sink_port if args.port is None else args.port
    serve_forever(host, port, _stop_on_signals())
    return 0


def _print_first_admin(username: str, password: str, url: str) -> None:
    from rich.console import Console
    from rich.panel import Panel

    Console().print(
        Panel(
            f"Sign in at [bold]{url}/login/[/bold]\n\n"
            f"  username  [bold]{username}[/bold]\n  password  [bold]{password}[/bold]\n\n"
            "This password is shown once and never stored in clear. Change it under Settings → Account.",
            title="First admin created",
            border_style="green",
        )
    )


def cmd_up(args: argparse.Namespace) -> int:
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    from bastion.core.bootstrap import ensure_first_admin, local_agent_token
    from bastion.gunicorn_worker import WORKER_CLASS
    from bastion.supervisor import Child, Supervisor, bastion_argv, wait_until_healthy

    config = settings.CONFIG
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    first_admin = ensure_first_admin()
    agent_token = local_agent_token() if config.local_agent and not args.no_agent else None
    url = f"http://{config.host}:{config.port}"

    web = Child(
        "web",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "bastion.wsgi:application",
            "--bind",
            f"{config.host}:{config.port}",
            "--workers",
            str(config.web_workers),
            "--worker-class",
            WORKER_CLASS,
            "--threads",
            str(config.web_threads),
            "--timeout",
            "60",
            "--graceful-timeout",
            "10",
            "--log-level",
            "warning",
        ],
    )
    children = [
        web,
        Child("worker", bastion_argv("worker")),
        Child("scheduler", bastion_argv("scheduler")),
        Child("mail", bastion_argv("mailsink")),
    ]
    supervisor = Supervisor(children)
    stop = _stop_on_signals()

    def relay_stop() -> None:
        stop.wait()
        supervisor.stopping.set()

    threading.Thread(target=relay_stop, daemon=True).start()
    supervisor.start_all()
    if not wait_until_healthy(url):
        print(f"bastion: the web server did not answer on {url}")
        supervisor.stop_all()
        return 1
    if agent_token is not None:
        agent = Child(
            "agent",
            bastion_argv(
                "agent", "start", "--server", url, "--name", "local", "--tags", "queue=default"
            ),
            env={"BASTION_AGENT_TOKEN": agent_token},
        )
        supervisor.children.append(agent)
        supervisor.start(agent)
    if first_admin is not None:
        _print_first_admin(first_admin.username, first_admin.password, url)
    print(
        f"Bastion is running on {url} — mail sink on {config.smtp_sink_host}:{config.smtp_sink_port}. "
        "Press Ctrl-C to stop."
    )
    code = supervisor.watch()
    print("Stopping Bastion…")
    supervisor.stop_all()
    return code
