"""ImportJob.heartbeat_at: a job whose worker stopped beating can be re-run."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("usage", "0006_metrics_alerts")]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Last sign of life of the worker running it; a stale one may be re-run.",
                null=True,
            ),
        ),
    ]
