"""Rollup storage tuning: leave room on each page so the fold's updates stay HOT."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("usage", "0004_import_progress_bytes")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE usage_dailyrollup SET (fillfactor = 85)",
            "ALTER TABLE usage_dailyrollup RESET (fillfactor)",
        ),
    ]
