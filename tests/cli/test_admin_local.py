"""The administration commands on the local database, run as the real ``bastion`` command."""

from __future__ import annotations

import csv
import io
import json

from tests.cli.conftest import Cli


def _json(cli: Cli, *args: str, stdin: str | None = None) -> dict[str, object]:
    result = cli.run(*args, "--json", stdin=stdin, check=True)
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _django(cli: Cli, code: str) -> str:
    output = cli.run("manage", "shell", "--no-imports", "-c", code, check=True).stdout
    return output.strip()


def test_createuser(cli: Cli) -> None:
    alice = _json(cli, "createuser", "alice", "--email", "alice@example.test")
    password = alice["password"]  # generated, printed once
    assert isinstance(password, str) and len(password) >= 16
    root = _json(
        cli, "createuser", "root", "--email", "root@example.test", "--superuser",
        "--password-stdin", stdin="a-long-and-unusual-password\n",
    )  # fmt: skip
    assert root["password"] is None and root["superuser"] is True
    human = cli.run("createuser", "bob", "--email", "bob@example.test", check=True)
    lines = human.stdout.strip().splitlines()
    assert "Created user bob" in lines[0] and "shown once" in lines[1] and len(lines[2]) >= 16

    again = cli.run("createuser", "alice", "--email", "other@example.test")
    assert again.returncode == 1 and "already exists" in again.stderr
    weak = cli.run(
        "createuser", "carol", "--email", "c@example.test", "--password-stdin", stdin="short\n"
    )
    assert weak.returncode == 1 and "too short" in weak.stderr

    check = _django(
        cli,
        "from bastion.core.models import User; a = User.objects.get(username='alice'); "
        "r = User.objects.get(username='root'); "
        f"print(a.check_password({password!r}), a.password.split('$')[0], "
        "r.check_password('a-long-and-unusual-password'), r.is_superuser, r.is_staff, "
        "User.objects.count())",
    )
    assert check == "True argon2 True True True 3"


def test_org_project_and_token(cli: Cli) -> None:
    cli.run("createuser", "alice", "--email", "alice@example.test", check=True)
    org = _json(cli, "org", "create", "acme", "--name", "Acme Inc", "--owner", "alice")
    assert org["slug"] == "acme" and org["owner"] == "alice"
    project = _json(cli, "project", "create", "acme/web", "--name", "Web shop")
    assert project == {"organization": "acme", "slug": "web", "name": "Web shop"}
    token = _json(
        cli, "token", "create", "--org", "acme", "--role", "admin", "--name", "ci",
        "--expires-in-days", "30",
    )  # fmt: skip
    assert str(token["token"]).startswith("bstapi_") and token["role"] == "admin"
    assert token["expires_at"] is not None
    # Only the hash is stored.
    stored = cli.sql("SELECT token_hash, prefix FROM core_apitoken")
    assert len(stored) == 1 and token["token"] not in stored[0]
    members = cli.sql(
        "SELECT u.username, m.role FROM core_membership m JOIN core_user u ON u.id = m.user_id"
    )
    assert members == [("alice", "owner")]
    actors = {row[0] for row in cli.sql("SELECT DISTINCT actor_label FROM core_auditevent")}
    assert actors == {"cli"}

    human = cli.run("token", "create", "--org", "acme", "--role", "viewer", "--name", "ro")
    assert human.returncode == 0
    assert human.stdout.strip().splitlines()[-1].startswith("bstapi_")


def test_bad_arguments_fail_with_a_message(cli: Cli) -> None:
    assert "no user" in cli.run("org", "create", "acme", "--owner", "ghost").stderr
    cli.run("org", "create", "acme", check=True)
    dup = cli.run("org", "create", "acme")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    assert "ORG/SLUG" in cli.run("project", "create", "acme").stderr
    assert "no organization" in cli.run("project", "create", "nope/web").stderr
    zero = cli.run("token", "create", "--org", "acme", "--role", "admin", "--name", "x",
                   "--expires-in-days", "0")  # fmt: skip
    assert zero.returncode == 1 and "at least 1" in zero.stderr
    bad_role = cli.run("token", "create", "--org", "acme", "--role", "god", "--name", "x")
    assert bad_role.returncode == 2  # argparse: invalid choice
    assert cli.sql("SELECT count(*) FROM core_project") == [(0,)]
    assert cli.sql("SELECT count(*) FROM core_apitoken") == [(0,)]


def test_audit_export_and_verify(cli: Cli) -> None:
    cli.run("org", "create", "acme", check=True)
    cli.run("org", "create", "other", check=True)
    cli.run("project", "create", "acme/web", check=True)
    everything = json.loads(cli.run("audit", "export", check=True).stdout)
    assert [e["action"] for e in everything] == [
        "organization.create",
        "organization.create",
        "project.create",
    ]
    table = cli.run("audit", "export", "--org", "acme", "--format", "csv", check=True).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [r["action"] for r in rows] == ["organization.create", "project.create"]
    assert {r["organization"] for r in rows} == {"acme"}
    assert rows[1]["hash"] == everything[2]["hash"]
    assert cli.run("audit", "export", "--org", "nope").returncode == 1

    assert "intact" in cli.run("audit", "verify", check=True).stdout
    report = json.loads(cli.run("audit", "verify", "--json", check=True).stdout)
    assert report == {"ok": True, "checked": 3, "first_bad_seq": None, "problem": ""}


def test_audit_verify_finds_a_tampered_row(cli: Cli) -> None:
    cli.run("org", "create", "acme", check=True)
    cli.run("project", "create", "acme/web", check=True)
    first = cli.sql("SELECT min(seq) FROM core_auditevent")[0][0]
    # Someone with access to the database file or server switches the guard off and edits.
    if cli.database_url:
        cli.sql("ALTER TABLE core_auditevent DISABLE TRIGGER core_auditevent_append_only")
    else:
        cli.sql("DROP TRIGGER core_auditevent_no_update")
    cli.sql("UPDATE core_auditevent SET object_repr = 'nothing to see' WHERE seq = ?", (first,))
    result = cli.run("audit", "verify")
    assert result.returncode == 1
    assert f"seq={first}" in result.stderr and "edited" in result.stderr
    report = json.loads(cli.run("audit", "verify", "--json").stdout)
    assert report["ok"] is False and report["first_bad_seq"] == first
