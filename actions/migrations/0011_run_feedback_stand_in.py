# A stand-in for the lead's "Did this fix it?" fields (issue 12, item 2), same names and types, so
# that tickets and insights can read them on this branch. Drop this file on merge in favour of the
# lead's migration that adds them.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("actions", "0010_ticket")]

    operations = [
        migrations.AddField(
            model_name="run",
            name="feedback_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="run",
            name="feedback_comment",
            field=models.TextField(blank=True, max_length=1000),
        ),
        migrations.AddField(
            model_name="run",
            name="fixed",
            field=models.BooleanField(blank=True, null=True),
        ),
    ]
