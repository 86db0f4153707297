import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError

from bastion.core import audit
from bastion.core.models import AuditEvent
from tests.factories import make_org, make_user


@pytest.mark.django_db
def test_audit_chain_verifies_and_rows_cannot_be_updated() -> None:
    owner = make_user()
    make_org(owner)
    report = audit.verify_chain()
    assert report.ok and report.checked >= 3
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().update(action="x")
    with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE core_auditevent SET action = 'tampered'")
