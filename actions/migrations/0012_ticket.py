# Service desk tickets (issue 12, item 3) and the insights index (item 5).


import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("actions", "0011_output_labels"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Ticket",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("requested", "Requested"),
                            ("sending", "Being opened"),
                            ("created", "Created"),
                            ("failed", "Failed"),
                        ],
                        default="requested",
                        max_length=10,
                    ),
                ),
                ("backend", models.CharField(max_length=20)),
                (
                    "number",
                    models.CharField(
                        blank=True, help_text="The service desk's reference, e.g. INC0010001.", max_length=100
                    ),
                ),
                (
                    "external_id",
                    models.CharField(blank=True, help_text="ServiceNow: the incident's sys_id.", max_length=100),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("uncertain", models.BooleanField(default=False)),
                ("error", models.TextField(blank=True)),
                (
                    "run_url",
                    models.URLField(
                        blank=True, help_text="The run's page, as the employee reached it.", max_length=500
                    ),
                ),
                (
                    "requested_at",
                    models.DateTimeField(help_text="When the employee last asked (the deadline counts from here)."),
                ),
                ("claimed_at", models.DateTimeField(blank=True, null=True)),
                ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["-created_at"],
            },
        ),
        migrations.CreateModel(
            name="RunInsight",
            fields=[],
            options={
                "verbose_name": "insight",
                "verbose_name_plural": "insights",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("actions.run",),
        ),
        migrations.AddField(
            model_name="remoteaction",
            name="ticket_assignment_group",
            field=models.CharField(
                blank=True,
                help_text="ServiceNow: the assignment group (its name) for tickets about this action. Empty: none set.",
                max_length=100,
            ),
        ),
        migrations.AddField(
            model_name="remoteaction",
            name="ticket_category",
            field=models.CharField(
                blank=True,
                help_text="The service desk's category for a ticket about this action (ServiceNow: the incident's category value). Empty: TICKETING_DEFAULT_CATEGORY.",
                max_length=100,
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["created_at", "action"], name="run_created_action_idx"),
        ),
        migrations.AddField(
            model_name="ticket",
            name="requested_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="ticket",
            name="run",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="ticket", to="actions.run"
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(fields=["state", "requested_at"], name="ticket_state_requested_idx"),
        ),
    ]
