"""The audit log: hash-chained, append-only in the ORM and in the database, and written in the
same transaction as the change it records.

Tampering is done the way an attacker with database access would: raw SQL, after switching off
the append-only trigger (inside the test's transaction, so it is restored afterwards).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import ProtectedError

from bastion.core import audit, services
from bastion.core.access import Principal
from bastion.core.context import Actor
from bastion.core.models import AuditEvent, Organization, Project, User
from tests.factories import make_org, make_project, make_user

pytestmark = pytest.mark.django_db


@contextmanager
def trigger_off() -> Iterator[None]:
    """Disable the database's append-only guard for the rest of the test transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A superuser can switch ordinary triggers off for one transaction (as logical
            # replication does). ALTER TABLE ... DISABLE TRIGGER is refused inside the test's
            # transaction because of its pending deferred foreign-key checks.
            cursor.execute("SET LOCAL session_replication_role = replica")
        else:
            cursor.execute("DROP TRIGGER core_auditevent_no_update")
    yield


def _some_events(n: int = 3) -> list[AuditEvent]:
    owner = make_user()
    org = make_org(owner)
    for _ in range(n):
        make_project(org)
    return list(AuditEvent.objects.order_by("seq"))


def test_intact_chain_verifies() -> None:
    events = _some_events()
    report = audit.verify_chain()
    assert report.ok and report.checked == len(events) and report.first_bad_seq is None
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash


@pytest.mark.parametrize(
    "column,value",
    [
        ("action", "'project.delete'"),
        ("actor_label", "'user:someone-else'"),
        ("object_repr", "'innocent'"),
        ("ip", "'10.0.0.1'"),
        ("changes", "'{}'"),
    ],
)
def test_edited_row_is_found(column: str, value: str) -> None:
    events = _some_events()
    victim = events[len(events) // 2]
    with trigger_off(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE core_auditevent SET {column} = {value} WHERE seq = %s",  # noqa: S608
            [victim.seq],
        )
    report = audit.verify_chain()
    assert not report.ok
    assert report.first_bad_seq == victim.seq
    assert "edited" in report.problem
    assert report.checked == events.index(victim)


def test_rehashed_row_is_found_at_the_next_link() -> None:
    events = _some_events()
    victim = events[1]
    # A careful attacker also recomputes the edited row's hash; the next row still points at
    # the old one.
    with trigger_off(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_auditevent SET hash = %s WHERE seq = %s", ["f" * 64, victim.seq]
        )
    report = audit.verify_chain()
    assert not report.ok and report.first_bad_seq == victim.seq


def test_removed_row_is_found() -> None:
    events = _some_events()
    victim = events[2]
    with trigger_off(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditevent WHERE seq = %s", [victim.seq])
    report = audit.verify_chain()
    assert not report.ok
    assert report.first_bad_seq == events[3].seq
    assert "removed" in report.problem


def test_database_refuses_raw_update_and_delete() -> None:
    events = _some_events(1)
    with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE core_auditevent SET action = 'x' WHERE seq = %s", [events[0].seq]
            )
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM core_auditevent WHERE seq = %s", [events[0].seq])
    assert audit.verify_chain().ok


def test_no_orm_path_updates_or_deletes_rows() -> None:
    events = _some_events(1)
    event = events[-1]
    attempts = [
        lambda: AuditEvent.objects.filter(seq=event.seq).update(action="x"),
        lambda: AuditEvent.objects.all().delete(),
        event.delete,
        lambda: AuditEvent.objects.bulk_update([event], ["action"]),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionError), transaction.atomic():
            attempt()
    event.action = "x"
    with pytest.raises(PermissionError), transaction.atomic():
        event.save()
    # Deleting what the log refers to is refused too, rather than cascading into the log.
    with pytest.raises(ProtectedError), transaction.atomic():
        Organization.objects.filter(pk=event.organization_id).delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        User.objects.filter(pk__in=AuditEvent.objects.exclude(actor=None).values("actor")).delete()
    assert audit.verify_chain().ok


def test_failing_action_leaves_neither_change_nor_audit_row() -> None:
    before = (Organization.objects.count(), AuditEvent.objects.count())
    unsaved_owner = User(username="ghost", email="ghost@example.test")
    # The organization and its audit row are written, then adding the owner fails: the
    # action's transaction is rolled back as a whole.
    with pytest.raises(ValueError):
        services.create_organization(
            Actor.system("test"), name="Doomed", slug="doomed", owner=unsaved_owner
        )
    assert (Organization.objects.count(), AuditEvent.objects.count()) == before
    assert audit.verify_chain().ok


def _refuse_audit_inserts_of(action: str) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION pg_temp.refuse_audit() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.action = '{action}' THEN RAISE EXCEPTION 'audit store refused'; END IF; "
                "RETURN NEW; END; $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON core_auditevent "
                "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_audit()"
            )
        else:
            cursor.execute(
                "CREATE TEMP TRIGGER test_refuse_audit BEFORE INSERT ON core_auditevent "
                f"WHEN NEW.action = '{action}' BEGIN SELECT RAISE(ABORT, 'audit store refused'); END"
            )


def test_failing_audit_write_undoes_the_change() -> None:
    owner = make_user()
    org = make_org(owner)
    _refuse_audit_inserts_of("project.create")
    with pytest.raises((DatabaseError, IntegrityError)):
        services.create_project(Principal.of_user(owner), org, slug="web", name="Web")
    assert not Project.objects.filter(slug="web").exists()


def test_concurrent_appends_keep_one_chain() -> None:
    owner = make_user()
    org = make_org(owner)
    principal = Principal.of_user(owner)
    # Interleaved nested transactions (savepoints), some rolled back: the chain stays linear.
    for n in range(6):
        try:
            with transaction.atomic():
                services.create_project(principal, org, slug=f"p{n}", name="P")
                if n % 2:
                    raise RuntimeError("roll this one back")
        except RuntimeError:
            pass
    assert Project.objects.filter(organization=org).count() == 3
    assert audit.verify_chain().ok
