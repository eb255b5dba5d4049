"""The two roles oauthmail ships with.

OAuth administrators: everything about applications and accounts.
Mailbox operators: accounts and Init. Token; they may look at applications (never at secrets,
which no page shows) but not change them.
"""
from django.contrib.auth.management import create_permissions
from django.db import migrations

ADMINISTRATORS = "OAuth administrators"
OPERATORS = "Mailbox operators"
OPERATOR_PERMISSIONS = [
    ("accounts", "add_account"),
    ("accounts", "change_account"),
    ("accounts", "delete_account"),
    ("accounts", "view_account"),
    ("accounts", "init_token"),
    ("accounts", "view_tokenevent"),
    ("providers", "view_application"),
]


def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    administrators, _ = Group.objects.get_or_create(name=ADMINISTRATORS)
    administrators.permissions.add(*Permission.objects.filter(content_type__app_label__in=["accounts", "providers"]))
    operators, _ = Group.objects.get_or_create(name=OPERATORS)
    for app_label, codename in OPERATOR_PERMISSIONS:
        operators.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[ADMINISTRATORS, OPERATORS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("providers", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
