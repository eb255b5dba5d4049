"""Alert permissions for the two groups: OAuth administrators configure the channels (and send test
alerts); Mailbox operators may look at the channels and at every alert sent."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

ADMINISTRATORS = "OAuth administrators"
OPERATORS = "Mailbox operators"
VIEW = ["view_channel", "view_alert", "view_delivery"]
ADMINISTRATOR_ONLY = ["add_channel", "change_channel", "delete_channel"]


def grant(apps, schema_editor):
    app_config = apps.get_app_config("alerts")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = {p.codename: p for p in Permission.objects.filter(content_type__app_label="alerts")}
    for group in Group.objects.filter(name=ADMINISTRATORS):
        group.permissions.add(*(permissions[name] for name in VIEW + ADMINISTRATOR_ONLY))
    for group in Group.objects.filter(name=OPERATORS):
        group.permissions.add(*(permissions[name] for name in VIEW))


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("accounts", "0002_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
