"""Rollup storage tuning: leave room on each page so the fold's updates stay HOT, and drop
the account_id index, which the (account, meter, day) and (account, day) indexes cover."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("usage", "0004_import_progress_bytes"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE usage_dailyrollup SET (fillfactor = 85)",
            "ALTER TABLE usage_dailyrollup RESET (fillfactor)",
        ),
        migrations.AlterField(
            model_name="dailyrollup",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="rollups",
                to="accounts.account",
            ),
        ),
    ]
