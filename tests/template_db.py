"""One migrated database per test run, shared by every pytest-xdist worker.

Running the migrations costs 5 to 7 s of CPU. Each worker used to run them twice (its pytest-django
test database, then a `bastion migrate` template for the CLI tests), all four workers at once at
the start of a pass on a two-core machine. Now the first worker that needs a migrated database
runs `bastion migrate` once, under a file lock, into a folder (and on PostgreSQL a database) named
after the run; every worker clones it: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE``
on PostgreSQL. The controller process removes both when the run ends
(``remove_shared_template``, called from tests/conftest.py).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

BASTION = str(Path(sys.executable).with_name("bastion"))
PG_URL = os.environ.get("BASTION_DATABASE_URL", "")
SQLITE_NAME = "bastion.sqlite3"


RUN_ID_VARIABLE = "BASTION_TESTS_RUN_ID"


def set_run_id() -> None:
    """Called by the controller before xdist starts its workers, which inherit the variable."""
    os.environ[RUN_ID_VARIABLE] = uuid.uuid4().hex[:20]


def _run_id() -> str:
    return os.environ.get(RUN_ID_VARIABLE) or f"solo{os.getpid()}"


def shared_root() -> Path:
    return Path(tempfile.gettempdir()) / f"bastion-tests-{_run_id()}"


def template_database_name() -> str:
    return f"bastion_tpl_{_run_id()}"


def pg_admin_url() -> str:
    return PG_URL.replace("postgres://", "postgresql://", 1)


def pg_url_for(name: str) -> str:
    parts = urlparse(PG_URL)
    return urlunparse(parts._replace(path=f"/{name}"))


def pg_execute(sql: str) -> None:
    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def shared_template() -> tuple[Path, str]:
    """The migrated template's data folder and (on PostgreSQL) database URL; made on first use."""
    root = shared_root()
    root.mkdir(exist_ok=True)
    data_dir = root / "data"
    url = pg_url_for(template_database_name()) if PG_URL else ""
    with (root / "template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "template.ready").exists():
            _migrate(data_dir, url)
            (root / "template.ready").write_text("")
    return data_dir, url


def _migrate(data_dir: Path, url: str) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir()
    if url:
        name = template_database_name()
        pg_execute(f'DROP DATABASE IF EXISTS "{name}"')
        pg_execute(f'CREATE DATABASE "{name}"')
    # Imported here: tests.cli.conftest imports this module.
    from tests.cli.conftest import Cli

    Cli(data_dir, url).run("migrate", check=True)


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, even while others read it."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def clone_pg(name: str, template: str) -> None:
    """``CREATE DATABASE name TEMPLATE template``; retried while the template is briefly in use."""
    pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for attempt in range(50):
        try:
            pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 49:
                raise
            time.sleep(0.2)


def remove_shared_template() -> None:
    root = shared_root()
    if not root.exists():
        return
    if PG_URL:
        pg_execute(f'DROP DATABASE IF EXISTS "{template_database_name()}" WITH (FORCE)')
    shutil.rmtree(root, ignore_errors=True)
