"""The three roles as groups with their permissions (values frozen here, as migrations should be)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATOR = ["migrations_ui.start_migration", "migrations_ui.evacuate_host"]
ADMINISTRATOR = OPERATOR + [
    "fabric.manage_hosts",
    "fabric.change_host_settings",
    "auth.change_user",
    "auth.add_user",
    "auth.view_user",
    "auth.change_group",
    "auth.view_group",
]
ROLES = {"Viewer": [], "Operator": OPERATOR, "Administrator": ADMINISTRATOR}


def make_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; these groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("fabric", "0003_host_permissions"),
        ("migrations_ui", "0002_job_permissions"),
    ]
    operations = [migrations.RunPython(make_roles, remove_roles)]
