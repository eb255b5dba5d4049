"""OAuth administrators manage relay clients (a relay password sends mail as a mailbox: not for Mailbox operators)."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

ADMINISTRATORS = "OAuth administrators"


def grant(apps, schema_editor):
    app_config = apps.get_app_config("relay")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name=ADMINISTRATORS):
        group.permissions.add(*Permission.objects.filter(content_type__app_label="relay"))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name=ADMINISTRATORS):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="relay"))


class Migration(migrations.Migration):
    dependencies = [
        ("relay", "0001_relay_clients"),
        ("accounts", "0002_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
