"""Typed configuration read from ``BASTION_*`` environment variables.

Every setting has a default that works on one machine with no configuration. Settings that
contradict each other fail at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse


class ConfigError(Exception):
    """A BASTION_* variable is invalid or contradicts another one."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: dict[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _list(env: dict[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _dsn(env: dict[str, str], name: str) -> str:
    """A Sentry DSN (``http(s)://<key>@host[:port][/path]/<project id>``), or ''."""
    raw = env.get(name, "").strip()
    if not raw:
        return ""
    parts = urlparse(raw)
    project_id = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if parts.scheme not in {"http", "https"} or not parts.username or not parts.hostname:
        raise ConfigError(f"{name} must be a DSN such as http://KEY@host:8000/3")
    if not project_id.isdigit():
        raise ConfigError(f"{name} must end with the project id, such as http://KEY@host:8000/3")
    return raw


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    secret_key: str
    debug: bool
    host: str
    port: int
    public_url: str
    allowed_hosts: list[str]
    https: bool
    web_workers: int
    web_threads: int
    smtp_sink_host: str
    smtp_sink_port: int
    mail_domain: str
    email_host: str
    email_port: int
    email_from: str
    storage: str
    s3_bucket: str
    s3_endpoint_url: str
    max_body_bytes: int
    login_max_failures: int
    login_lockout_s: int
    agent_poll_interval_s: float
    agent_long_poll_s: float
    agent_heartbeat_interval_s: float
    agent_lost_after_s: float
    job_expiry_s: int
    mail_retention_days: int = 14
    notify_max_per_minute: int = 20
    local_agent: bool = True
    scan_allow_hosts: list[str] = field(default_factory=list)
    dogfood_dsn: str = ""


def _secret_key(env: dict[str, str], data_dir: Path) -> str:
    if env.get("BASTION_SECRET_KEY"):
        key = env["BASTION_SECRET_KEY"]
        if len(key) < 32:
            raise ConfigError("BASTION_SECRET_KEY must be at least 32 characters long")
        return key
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # Created with 0600 so that only the service user can read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load(env: dict[str, str] | None = None) -> Config:
    """Read and validate the configuration; raise ConfigError naming the culprit variable."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("BASTION_DATA_DIR", "var")).resolve()
    database_url = (
        env.get("BASTION_DATABASE_URL", "") or f"sqlite:///{data_dir / 'bastion.sqlite3'}"
    )
    scheme = urlparse(database_url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ConfigError(
            f"BASTION_DATABASE_URL must be a sqlite:// or postgres:// URL, got scheme {scheme!r}"
        )
    host = env.get("BASTION_HOST", "127.0.0.1")
    port = _int(env, "BASTION_PORT", 8000, minimum=1)
    https = _bool(env, "BASTION_HTTPS", False)
    public_url = env.get("BASTION_PUBLIC_URL", "").rstrip("/") or (
        f"{'https' if https else 'http'}://{host if host not in {'0.0.0.0', '::'} else '127.0.0.1'}:{port}"  # noqa: S104
    )
    if https and public_url.startswith("http://"):
        raise ConfigError(
            "BASTION_PUBLIC_URL starts with http:// but BASTION_HTTPS=true: "
            "secure cookies would never be sent back"
        )
    public_host = urlparse(public_url).hostname or "127.0.0.1"
    allowed_hosts = _list(
        env, "BASTION_ALLOWED_HOSTS", sorted({"127.0.0.1", "localhost", "[::1]", public_host})
    )
    storage = env.get("BASTION_STORAGE", "local")
    if storage not in {"local", "s3"}:
        raise ConfigError(f"BASTION_STORAGE must be 'local' or 's3', got {storage!r}")
    s3_bucket = env.get("BASTION_S3_BUCKET", "")
    if storage == "s3" and not s3_bucket:
        raise ConfigError("BASTION_STORAGE=s3 needs BASTION_S3_BUCKET")
    heartbeat = _float(env, "BASTION_AGENT_HEARTBEAT_INTERVAL_S", 10.0, minimum=0.1)
    lost_after = _float(env, "BASTION_AGENT_LOST_AFTER_S", 180.0, minimum=0.5)
    if lost_after <= heartbeat:
        raise ConfigError(
            "BASTION_AGENT_LOST_AFTER_S must be longer than BASTION_AGENT_HEARTBEAT_INTERVAL_S, "
            "or every agent would be marked lost"
        )
    smtp_sink_port = _int(env, "BASTION_SMTP_SINK_PORT", 2525, minimum=0)
    dogfood_dsn = _dsn(env, "BASTION_DOGFOOD_DSN")
    if smtp_sink_port == port and smtp_sink_port != 0:
        raise ConfigError("BASTION_SMTP_SINK_PORT must differ from BASTION_PORT")
    return Config(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=_secret_key(env, data_dir),
        debug=_bool(env, "BASTION_DEBUG", False),
        host=host,
        port=port,
        public_url=public_url,
        allowed_hosts=allowed_hosts,
        https=https,
        web_workers=_int(env, "BASTION_WEB_WORKERS", 2, minimum=1),
        web_threads=_int(env, "BASTION_WEB_THREADS", 8, minimum=1),
        smtp_sink_host=env.get("BASTION_SMTP_SINK_HOST", "127.0.0.1"),
        smtp_sink_port=smtp_sink_port,
        mail_domain=env.get("BASTION_MAIL_DOMAIN", "inbox.bastion.test"),
        email_host=env.get("BASTION_EMAIL_HOST", "127.0.0.1"),
        email_port=_int(env, "BASTION_EMAIL_PORT", smtp_sink_port, minimum=0),
        email_from=env.get("BASTION_EMAIL_FROM", "bastion@localhost"),
        storage=storage,
        s3_bucket=s3_bucket,
        s3_endpoint_url=env.get("BASTION_S3_ENDPOINT_URL", ""),
        max_body_bytes=_int(env, "BASTION_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024),
        login_max_failures=_int(env, "BASTION_LOGIN_MAX_FAILURES", 5, minimum=1),
        login_lockout_s=_int(env, "BASTION_LOGIN_LOCKOUT_S", 300, minimum=1),
        agent_poll_interval_s=_float(env, "BASTION_AGENT_POLL_INTERVAL_S", 1.0, minimum=0.05),
        agent_long_poll_s=_float(env, "BASTION_AGENT_LONG_POLL_S", 10.0, minimum=0.0),
        agent_heartbeat_interval_s=heartbeat,
        agent_lost_after_s=lost_after,
        job_expiry_s=_int(env, "BASTION_JOB_EXPIRY_S", 24 * 3600, minimum=1),
        mail_retention_days=_int(env, "BASTION_MAIL_RETENTION_DAYS", 14, minimum=1),
        notify_max_per_minute=_int(env, "BASTION_NOTIFY_MAX_PER_MINUTE", 20, minimum=1),
        local_agent=_bool(env, "BASTION_LOCAL_AGENT", True),
        scan_allow_hosts=_list(env, "BASTION_SCAN_ALLOW_HOSTS", ["127.0.0.0/8", "::1"]),
        dogfood_dsn=dogfood_dsn,
    )
