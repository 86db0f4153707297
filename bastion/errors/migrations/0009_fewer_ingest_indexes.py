"""Fewer indexes written by each ingested event (measured with bench/ingest.py).

The single-column indexes Django gives foreign keys duplicate the leading column of a unique
or composite index on the same table, so they are dropped by name (the names are the same on
SQLite and PostgreSQL). ``SeparateDatabaseAndState`` keeps SQLite from copying the events
table once per altered field, as its ``AlterField`` would.
"""

import django.db.models.deletion
from django.db import migrations, models

DROPPED = {
    # index name: (table, column)
    "errors_event_issue_id_a0d78f2b": ("errors_event", "issue_id"),
    "errors_event_project_id_827d7016": ("errors_event", "project_id"),
    "errors_event_suppressed_by_id_799c6021": ("errors_event", "suppressed_by_id"),
    "errors_issuetagvalue_issue_id_9b2122e3": ("errors_issuetagvalue", "issue_id"),
    "errors_issueuser_issue_id_e968535f": ("errors_issueuser", "issue_id"),
}


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_delivery_recipient"),
        ("errors", "0008_assignee_comments"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "{table}" ("{column}")',
                )
                for name, (table, column) in DROPPED.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="issue",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="errors.issue",
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="project",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="core.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="suppressed_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="events",
                        to="errors.ignorerule",
                    ),
                ),
                migrations.AlterField(
                    model_name="issuetagvalue",
                    name="issue",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="errors.issue",
                    ),
                ),
                migrations.AlterField(
                    model_name="issueuser",
                    name="issue",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="errors.issue",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                condition=models.Q(("suppressed_by__isnull", False)),
                fields=["suppressed_by"],
                name="event_suppressed",
            ),
        ),
    ]
