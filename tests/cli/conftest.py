"""Run the real ``bastion`` command in a subprocess against its own migrated database.

On the SQLite pass that is a file in a temporary BASTION_DATA_DIR; on the PostgreSQL pass
(BASTION_DATABASE_URL set) a database of its own on the same server, dropped afterwards.
Migrations run once per test run into a template that each test clones (tests/template_db.py).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from tests.template_db import (
    BASTION,
    PG_URL,
    SQLITE_NAME,
    clone_pg,
    copy_sqlite,
    pg_execute,
    pg_url_for,
    shared_template,
)

_counter = itertools.count(1)


@dataclass
class Cli:
    """One Bastion installation: its data folder and (on PostgreSQL) its database."""

    data_dir: Path
    database_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env["BASTION_DATA_DIR"] = str(self.data_dir)
        if self.database_url:
            env["BASTION_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        env.update(extra)
        return env

    def run(
        self, *args: str, stdin: str | None = None, check: bool = False, **env: str
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [BASTION, *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=120,
            check=False,
        )
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run SQL on this installation's database directly (not through Bastion)."""
        if self.database_url:
            with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as c:
                cursor = c.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
                rows = cursor.fetchall() if cursor.description else []
                c.commit()
                return rows
        conn = sqlite3.connect(self.data_dir / "bastion.sqlite3")
        try:
            rows = conn.execute(statement, params).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()


@pytest.fixture(scope="session")
def cli_template(django_db_blocker: object) -> Cli:
    # Requesting django_db_blocker marks these tests as database tests, so they run on the
    # PostgreSQL pass too (tests/conftest.py); they never use the test process's database.
    data_dir, database_url = shared_template()
    return Cli(data_dir, database_url)


@pytest.fixture
def cli(cli_template: Cli, tmp_path: Path) -> Iterator[Cli]:
    """A fresh, migrated installation for this test."""
    with installation(cli_template, tmp_path / "var") as fresh:
        yield fresh


@contextmanager
def installation(cli_template: Cli, data_dir: Path) -> Iterator[Cli]:
    """A fresh, migrated installation cloned from the template into ``data_dir`` (for fixtures
    of a wider scope than ``cli``, e.g. one server shared by a module's tests)."""
    shutil.copytree(cli_template.data_dir, data_dir, ignore=shutil.ignore_patterns("*.sqlite3*"))
    if not PG_URL:
        copy_sqlite(cli_template.data_dir / SQLITE_NAME, data_dir / SQLITE_NAME)
        yield Cli(data_dir)
        return
    name = f"bastion_cli_{os.getpid()}_{next(_counter)}"
    clone_pg(name, urlparse(cli_template.database_url).path.lstrip("/"))
    try:
        yield Cli(data_dir, pg_url_for(name))
    finally:
        pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
