"""A read key reads as a person (acts_as); existing read keys keep reading as their creator."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def read_keys_act_as_their_creator(apps, schema_editor):
    ApiKey = apps.get_model("revops", "ApiKey")
    ApiKey.objects.filter(scopes__contains=["read"], created_by__isnull=False).update(
        acts_as=models.F("created_by")
    )


class Migration(migrations.Migration):
    dependencies = [("revops", "0005_apikey_moved_from_usage"), ("usage", "0009_apikey_moved_to_revops")]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="acts_as",
            field=models.ForeignKey(
                blank=True,
                help_text="Whose permissions a read key reads with: it sees exactly what this person may see.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="api_keys",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(read_keys_act_as_their_creator, migrations.RunPython.noop),
    ]
