"""The database cache is gone: the cache is Redis everywhere (the embedded one in development)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("revops", "0003_team_slack_webhook_url")]

    operations = [migrations.RunSQL("DROP TABLE IF EXISTS revops_cache", migrations.RunSQL.noop)]
