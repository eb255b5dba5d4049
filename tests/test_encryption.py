"""Secrets are encrypted at rest; a wrong key fails loudly; keys can be rotated."""
import uuid

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from accounts.models import Account
from oauthmail.crypto import Ciphertext, DecryptionError
from providers.models import Application

pytestmark = pytest.mark.django_db

SECRET = "client-secret-Value~123"
ACCESS = "access-token-eyJ0eXAiOiJKV1Qi"
REFRESH = "refresh-token-0.AXkA-very-long"


def raw_row(table, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])
        return " ".join(str(value) for value in cursor.fetchone())


@pytest.fixture
def stored():
    app = Application(identifier="contoso", name="C", tenant="common", client_id=str(uuid.uuid4()))
    app.client_secret = SECRET
    app.save()
    account = Account(application=app, identifier="sales", name="S", email="s@contoso.com")
    account.access_token, account.refresh_token = ACCESS, REFRESH
    account.save()
    return app, account


def test_raw_rows_hold_no_secret_or_token(stored):
    app, account = stored
    assert SECRET not in raw_row("providers_application", app.pk)
    account_row = raw_row("accounts_account", account.pk)
    assert ACCESS not in account_row and REFRESH not in account_row


def test_python_reads_and_assigns_plain_text(stored):
    app, account = stored
    assert Application.objects.get(pk=app.pk).client_secret == SECRET
    assert Account.objects.get(pk=account.pk).refresh_token == REFRESH


def test_saving_again_does_not_encrypt_twice(stored):
    app, _ = stored
    loaded = Application.objects.get(pk=app.pk)
    loaded.name = "Renamed"
    loaded.save()
    assert Application.objects.get(pk=app.pk).client_secret == SECRET


def test_a_wrong_key_fails_loudly_instead_of_returning_ciphertext(stored, settings):
    app, _ = stored
    settings.OAUTHMAIL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    loaded = Application.objects.get(pk=app.pk)  # loading rows needs no key
    with pytest.raises(DecryptionError, match="OAUTHMAIL_ENCRYPTION_KEYS"):
        loaded.client_secret  # noqa: B018


def test_rotation_re_encrypts_with_the_first_key_so_the_old_one_can_go(stored, settings):
    app, account = stored
    old = settings.OAUTHMAIL_ENCRYPTION_KEYS[0]
    new = Fernet.generate_key().decode()
    settings.OAUTHMAIL_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys")
    settings.OAUTHMAIL_ENCRYPTION_KEYS = [new]
    assert Application.objects.get(pk=app.pk).client_secret == SECRET
    fresh = Account.objects.get(pk=account.pk)
    assert (fresh.access_token, fresh.refresh_token) == (ACCESS, REFRESH)


def test_rotation_with_a_missing_key_stops_with_a_clear_error(stored, settings):
    from django.core.management.base import CommandError

    settings.OAUTHMAIL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="none of the keys"):
        call_command("rotate_encryption_keys")


def test_rotation_is_all_or_nothing_and_names_the_model_row_and_field(stored, settings):
    from django.core.management.base import CommandError

    from accounts.models import InitRequest

    app, account = stored
    old = settings.OAUTHMAIL_ENCRYPTION_KEYS[0]
    lost = Fernet(Fernet.generate_key())  # a key removed too early
    Account.objects.filter(pk=account.pk).update(refresh_token=Ciphertext(lost.encrypt(b"x").decode()))
    request = InitRequest.objects.create(account=account, flow="device_code", started_by="t")
    InitRequest.objects.filter(pk=request.pk).update(state=Ciphertext(lost.encrypt(b"{}").decode()))
    raw_before = raw_row("providers_application", app.pk)
    settings.OAUTHMAIL_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old]
    with pytest.raises(CommandError) as error:
        call_command("rotate_encryption_keys")
    message = str(error.value)
    assert "Nothing was re-encrypted" in message
    assert f"accounts.Account “sales” (pk {account.pk}), field refresh_token" in message
    assert f"accounts.InitRequest pk {request.pk}, field state" in message
    assert "field access_token" not in message and "client_secret" not in message
    assert raw_row("providers_application", app.pk) == raw_before  # the readable values were not rotated
