"""bastion.config: defaults that work with no configuration, and contradictions that fail at
start-up naming the variable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.config import ConfigError, load


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"BASTION_DATA_DIR": str(tmp_path / "var"), **values}


def test_defaults_need_no_configuration(tmp_path: Path) -> None:
    config = load(_env(tmp_path))
    assert config.database_url == f"sqlite:///{tmp_path / 'var' / 'bastion.sqlite3'}"
    assert config.public_url == "http://127.0.0.1:8000"
    assert config.https is False and config.storage == "local"
    key_file = tmp_path / "var" / "secret_key"
    assert key_file.read_text() == config.secret_key and len(config.secret_key) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load(_env(tmp_path)).secret_key == config.secret_key  # kept across restarts


def test_explicit_settings_are_read(tmp_path: Path) -> None:
    config = load(
        _env(
            tmp_path,
            BASTION_HTTPS="yes",
            BASTION_PUBLIC_URL="https://bastion.example.test/",
            BASTION_PORT="9000",
            BASTION_SECRET_KEY="k" * 40,
            BASTION_DATABASE_URL="postgres://u@db.example.test/bastion",
        )
    )
    assert config.public_url == "https://bastion.example.test"
    assert "bastion.example.test" in config.allowed_hosts
    assert config.port == 9000 and config.secret_key == "k" * 40
    assert not (tmp_path / "var" / "secret_key").exists()


@pytest.mark.parametrize(
    "values,variable",
    [
        ({"BASTION_HTTPS": "true", "BASTION_PUBLIC_URL": "http://x.test"}, "BASTION_PUBLIC_URL"),
        ({"BASTION_STORAGE": "s3"}, "BASTION_S3_BUCKET"),
        ({"BASTION_STORAGE": "ftp"}, "BASTION_STORAGE"),
        (
            {"BASTION_AGENT_HEARTBEAT_INTERVAL_S": "30", "BASTION_AGENT_LOST_AFTER_S": "20"},
            "BASTION_AGENT_LOST_AFTER_S",
        ),
        ({"BASTION_SMTP_SINK_PORT": "8000"}, "BASTION_SMTP_SINK_PORT"),
        ({"BASTION_DATABASE_URL": "mysql://x/y"}, "BASTION_DATABASE_URL"),
        ({"BASTION_SECRET_KEY": "short"}, "BASTION_SECRET_KEY"),
        ({"BASTION_DEBUG": "maybe"}, "BASTION_DEBUG"),
        ({"BASTION_PORT": "eighty"}, "BASTION_PORT"),
        ({"BASTION_PORT": "0"}, "BASTION_PORT"),
        ({"BASTION_MAX_BODY_BYTES": "10"}, "BASTION_MAX_BODY_BYTES"),
        ({"BASTION_AGENT_POLL_INTERVAL_S": "soon"}, "BASTION_AGENT_POLL_INTERVAL_S"),
    ],
)
def test_bad_or_contradictory_settings_name_the_variable(
    tmp_path: Path, values: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        load(_env(tmp_path, **values))


def test_the_command_fails_at_start_up_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(_env(tmp_path, BASTION_STORAGE="s3"))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("bastion")), "audit", "verify"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "BASTION_S3_BUCKET" in result.stderr
    assert "Traceback" not in result.stderr
