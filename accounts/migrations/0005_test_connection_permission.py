"""The "test connection" permission, given to both groups: OAuth administrators and Mailbox operators."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ["OAuth administrators", "Mailbox operators"]


def grant(apps, schema_editor):
    app_config = apps.get_app_config("accounts")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="accounts", codename="test_connection")
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="accounts", codename="test_connection").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_browser_sign_in_state"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="account",
            options={
                "ordering": ["identifier"],
                "permissions": [
                    ("init_token", "Can initialise an account's token"),
                    ("test_connection", "Can test an account's mail server connection"),
                ],
                "verbose_name": "account",
                "verbose_name_plural": "accounts",
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
