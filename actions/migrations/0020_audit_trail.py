"""The audit trail (django-auditlog's table): the "Portal curators" group may read it in admin.

Nobody is given add, change or delete: the admin offers none of them to anyone (actions/admin/audit.py).
As in 0002_portal_curators_group, the permission is created here if post_migrate has not made it yet.
"""

from django.db import migrations

GROUP_NAME = "Portal curators"


def grant_view(apps, schema_editor):
    db = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.using(db).get_or_create(app_label="auditlog", model="logentry")
    permission, _ = Permission.objects.using(db).get_or_create(
        content_type=content_type, codename="view_logentry", defaults={"name": "Can view log entry"}
    )
    group, _ = Group.objects.using(db).get_or_create(name=GROUP_NAME)
    group.permissions.add(permission)


def revoke_view(apps, schema_editor):
    db = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.using(db).filter(
        content_type__app_label="auditlog", content_type__model="logentry", codename="view_logentry"
    )
    for group in Group.objects.using(db).filter(name=GROUP_NAME):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("actions", "0019_ux"),
        ("auditlog", "0017_add_actor_email"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant_view, revoke_view)]
