"""Small builders for test data: real rows in the real database."""
import uuid
from io import StringIO

from django.contrib.auth.models import Group, User
from django.core.management import call_command

from accounts.models import Account
from providers.models import Application


def make_application(
    idp, *, identifier="contoso", secret=None, register=True, tenant="contoso.onmicrosoft.com", **fields
):
    client_id = fields.pop("client_id", str(uuid.uuid4()))
    if register:
        idp.add_client(client_id, secret=secret)
    app = Application(
        identifier=identifier, provider="microsoft", tenant=tenant,
        client_id=client_id, **{"name": "Contoso mail", "authority_url": idp.url, **fields},
    )
    if secret:
        app.client_secret = secret
    app.full_clean()
    app.save()
    return app


def make_account(application, *, identifier="accounting", email="compta@contoso.com", flow="device_code", **fields):
    account = Account(application=application, identifier=identifier, name="Accounting", email=email, flow=flow,
                      **fields)
    account.full_clean()
    account.save()
    return account


def make_staff(username, group_name):
    if not Group.objects.filter(name=group_name).exists():
        restore_roles()
    user = User.objects.create_user(username=username, password="pw-" + username, is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


# The roles as the migrations made them: {group name: [(app label, codename), ...]}, recorded by
# tests/conftest.py when it creates the test database.
ROLES = {}


def record_roles():
    ROLES.clear()
    ROLES.update({group.name: list(group.permissions.values_list("content_type__app_label", "codename"))
                  for group in Group.objects.all()})


def restore_roles():
    """The roles again, as the migrations made them: a transactional test (live_server, shared_db) empties
    every table when it ends, and Django's serialized_rollback trips over the content types that the flush
    re-creates."""
    from django.contrib.auth.models import Permission

    for name, permissions in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([Permission.objects.get(content_type__app_label=app_label, codename=codename)
                               for app_label, codename in permissions])


def make_google_application(idp, *, identifier="workspace", secret="google-secret", register=True, **fields):
    client_id = fields.pop("client_id", f"{uuid.uuid4().hex[:12]}.apps.googleusercontent.com")
    if register:
        idp.add_client(client_id, secret=secret)
    app = Application(identifier=identifier, provider="google", client_id=client_id,
                      **{"name": "Workspace mail", "authority_url": idp.url, **fields})
    if secret:
        app.client_secret = secret
    app.full_clean()
    app.save()
    return app


def run_command(*args):
    """Run a management command as a terminal user would; returns (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def account_change_data(account, **overrides):
    """What the account's change form posts when saved as it is, with `overrides` typed in."""
    data = {name: getattr(account, name) for name in (
        "name", "email", "flow", "sign_in_user", "comments", "imap_host", "imap_port", "imap_security",
        "pop_host", "pop_port", "pop_security", "smtp_host", "smtp_port", "smtp_security")}
    data["application"] = account.application_id
    if account.verify_certificate:
        data["verify_certificate"] = "on"
    data.update(overrides)
    return {name: "" if value is None else value for name, value in data.items() if value is not False}


def save_account(client, account, **overrides):
    """Save the account's change form in the admin as `client`; returns the response."""
    from django.urls import reverse

    return client.post(reverse("admin:accounts_account_change", args=[account.pk]),
                       account_change_data(account, **overrides))
