"""The ApiKey model now lives in the core (revops.0005 renamed its table); usage forgets it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0008_alert_owner_pinned"),
        ("revops", "0005_apikey_moved_from_usage"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="ApiKey")]),
    ]
