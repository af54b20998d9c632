"""The "Portal curators" group: curate the catalog (actions, parameters, categories) and read runs.

Permissions are normally created after all migrations (post_migrate); on a fresh database they do not
exist yet, so this migration creates the few it needs, exactly as Django names them.
"""

from django.db import migrations

GROUP_NAME = "Portal curators"

# model name, verbose name, actions
CURATE = ("add", "change", "delete", "view")
READ = ("view",)
PERMISSIONS = [
    ("remoteaction", "remote action", CURATE),
    ("actionparameter", "action parameter", CURATE),
    ("category", "category", CURATE),
    ("run", "run", READ),
    ("runattempt", "run attempt", READ),
    ("engineresult", "engine result", READ),
]


def create_group(apps, schema_editor):
    db = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = []
    for model, verbose_name, verbs in PERMISSIONS:
        content_type, _ = ContentType.objects.using(db).get_or_create(app_label="actions", model=model)
        for verb in verbs:
            permission, _ = Permission.objects.using(db).get_or_create(
                content_type=content_type,
                codename=f"{verb}_{model}",
                defaults={"name": f"Can {verb} {verbose_name}"},
            )
            permissions.append(permission)
    group, _ = Group.objects.using(db).get_or_create(name=GROUP_NAME)
    group.permissions.set(permissions)


def delete_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(name=GROUP_NAME).delete()


class Migration(migrations.Migration):
    # After the device work's 0002 so that the graph has one leaf (the lead may squash or renumber).
    dependencies = [
        ("actions", "0002_devices_run_permission"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
