"""Security hardening: the "change mail servers" permission (OAuth administrators only), approval of
insecure mail servers (rows from before this migration are not approved), and token events that outlive
their account (they keep its identifier)."""
from django.contrib.auth.management import create_permissions

import django.db.models.deletion
import oauthmail.validators
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


ADMINISTRATORS = "OAuth administrators"


def grant(apps, schema_editor):
    app_config = apps.get_app_config("accounts")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="accounts", codename="change_mail_servers")
    for group in Group.objects.filter(name=ADMINISTRATORS):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="accounts", codename="change_mail_servers").delete()


def keep_identifiers(apps, schema_editor):
    TokenEvent = apps.get_model("accounts", "TokenEvent")
    Account = apps.get_model("accounts", "Account")
    TokenEvent.objects.update(account_identifier=Subquery(
        Account.objects.filter(pk=OuterRef("account_id")).values("identifier")[:1]
    ))


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_longer_sign_in_urls'),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='account',
            options={'ordering': ['identifier'], 'permissions': [('init_token', "Can initialise an account's token"), ('test_connection', "Can test an account's mail server connection"), ('change_mail_servers', "Can change an account's mail servers and certificate checking")], 'verbose_name': 'account', 'verbose_name_plural': 'accounts'},
        ),
        migrations.AddField(
            model_name='account',
            name='mail_servers_approved',
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name='account',
            name='mail_servers_approved_at',
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name='mail servers approved at'),
        ),
        migrations.AddField(
            model_name='account',
            name='mail_servers_approved_by',
            field=models.CharField(blank=True, editable=False, max_length=150, verbose_name='mail servers approved by'),
        ),
        migrations.AddField(
            model_name='tokenevent',
            name='account_identifier',
            field=models.CharField(db_index=True, default='', editable=False, max_length=100, verbose_name='account'),
        ),
        migrations.AlterField(
            model_name='account',
            name='name',
            field=models.CharField(max_length=200, validators=[oauthmail.validators.validate_visible_text], verbose_name='name'),
        ),
        migrations.AlterField(
            model_name='tokenevent',
            name='account',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='events', to='accounts.account', verbose_name='account'),
        ),
        migrations.AlterField(
            model_name='tokenevent',
            name='kind',
            field=models.CharField(choices=[('init', 'Initialised'), ('init_started', 'Init. Token started'), ('refresh', 'Refreshed'), ('failure', 'Failure'), ('reauth_required', 'Re-authorisation required'), ('read', 'Token read'), ('connection_test', 'Connection test'), ('mail_servers', 'Mail servers changed'), ('token_dropped', 'Token dropped'), ('deleted', 'Account deleted')], max_length=20, verbose_name='event'),
        ),
        migrations.AlterField(
            model_name='tokenevent',
            name='outcome',
            field=models.CharField(blank=True, max_length=1000, verbose_name='outcome'),
        ),
        migrations.RunPython(keep_identifiers, migrations.RunPython.noop),
        migrations.RunPython(grant, revoke),
    ]
