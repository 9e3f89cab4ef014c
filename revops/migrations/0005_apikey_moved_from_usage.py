"""API keys are identity, not usage: the model moves from usage to the core.

The table is renamed in place (usage_apikey → revops_apikey), so every key, its hash and
its last use are kept; usage.0009 then forgets the model in its own state.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("revops", "0004_drop_cache_table"),
        ("usage", "0008_alert_owner_pinned"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE usage_apikey RENAME TO revops_apikey",
                    "ALTER TABLE revops_apikey RENAME TO usage_apikey",
                )
            ],
            state_operations=[
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=120)),
                        (
                            "prefix",
                            models.CharField(db_index=True, help_text="First characters, to recognise a key.", max_length=12),
                        ),
                        ("hashed_key", models.CharField(max_length=64, unique=True)),
                        (
                            "scopes",
                            django.contrib.postgres.fields.ArrayField(
                                base_field=models.CharField(
                                    choices=[("events:write", "Write usage events"), ("read", "Read metrics, alerts and forecasts")],
                                    max_length=32,
                                ),
                                size=None,
                            ),
                        ),
                        ("rate_limit_per_minute", models.PositiveIntegerField(default=600)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"ordering": ["-created_at"]},
                ),
            ],
        ),
    ]
