"""Editing and deleting accounts in the admin: a token never stays paired with another mailbox, mailboxes
are not registered twice in two spellings, and the audit trail outlives the account."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, InitRequest, TokenEvent
from tests.factories import make_account, make_application, make_staff, save_account
from tests.test_api import create_client, get

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(make_staff("olivia", "Mailbox operators"))
    return client


@pytest.fixture
def account(idp, sign_in):
    return sign_in(make_account(make_application(idp)))


@pytest.mark.parametrize("field, value, logged", [
    ("email", "other@contoso.com", "e-mail address: compta@contoso.com → other@contoso.com"),
    ("sign_in_user", "boss@contoso.com", "sign-in user: - → boss@contoso.com"),
])
def test_changing_the_mailbox_of_an_account_with_a_token_drops_the_token(operator, account, field, value, logged):
    response = save_account(operator, account, **{field: value})
    assert response.status_code == 302
    account.refresh_from_db()
    assert getattr(account, field) == value
    assert account.status == Account.Status.NEW
    assert not account.access_token and not account.refresh_token and not account.access_token_expires_at
    event = account.events.get(kind=TokenEvent.Kind.TOKEN_DROPPED)
    assert event.actor == "olivia" and logged in event.text
    page = operator.get(response.url).content.decode()
    assert "was dropped" in page and "Init. Token" in page


def test_a_dropped_token_is_no_longer_handed_out(operator, account, client):
    key = create_client("erp", account.identifier)
    save_account(operator, account, email="other@contoso.com")
    response = get(client, account.identifier, key)
    assert response.status_code == 409 and response.json()["error"] == "not_initialized"


def test_changing_the_mailbox_ends_a_sign_in_in_progress(operator, account):
    from accounts import services

    pending = services.account_init_start(account=account, actor="test")
    save_account(operator, account, email="other@contoso.com")
    pending.refresh_from_db()
    assert pending.status == InitRequest.Status.FAILED and "mailbox changed" in pending.error


def test_moving_it_to_another_application_drops_the_token_too(admin_client, account, idp):
    other = make_application(idp, identifier="fabrikam")
    save_account(admin_client, account, application=other.pk)
    account.refresh_from_db()
    assert account.status == Account.Status.NEW and not account.refresh_token
    assert "application: contoso → fabrikam" in account.events.get(kind=TokenEvent.Kind.TOKEN_DROPPED).text


def test_other_changes_keep_the_token(operator, account):
    token = account.access_token
    save_account(operator, account, name="Accounting (Paris)", comments="moved")
    account.refresh_from_db()
    assert account.access_token == token and account.status == Account.Status.ACTIVE
    assert not account.events.filter(kind=TokenEvent.Kind.TOKEN_DROPPED).exists()


def test_an_account_without_a_token_changes_its_mailbox_quietly(operator, idp):
    account = make_account(make_application(idp))
    save_account(operator, account, email="other@contoso.com")
    account.refresh_from_db()
    assert account.email == "other@contoso.com"
    assert not account.events.exists()


def test_a_token_being_refreshed_is_not_dropped_and_nothing_is_saved(operator, account):
    Account.objects.filter(pk=account.pk).update(claim_id="refresher", claimed_until=timezone.now() + timedelta(60))
    response = save_account(operator, account, email="other@contoso.com")
    assert "being refreshed at this moment" in operator.get(response.url).content.decode()
    account.refresh_from_db()
    assert account.email == "compta@contoso.com" and account.status == Account.Status.ACTIVE


def test_a_mailbox_differing_only_in_case_from_another_account_is_refused(operator, account):
    response = operator.post(reverse("admin:accounts_account_add"), {
        "application": account.application_id, "identifier": "compta2", "name": "Compta", "flow": "device_code",
        "email": "Compta@Contoso.com"})
    errors = response.context["adminform"].form.errors
    assert "The account accounting has this mailbox as compta@contoso.com" in errors["email"][0]
    assert not Account.objects.filter(identifier="compta2").exists()


def test_a_deleted_accounts_events_remain_with_its_identifier_and_who_deleted_it(operator, account):
    operator.post(reverse("admin:accounts_account_delete", args=[account.pk]), {"post": "yes"})
    assert not Account.objects.filter(pk=account.pk).exists()
    events = TokenEvent.objects.filter(account_identifier="accounting")
    assert events.filter(kind=TokenEvent.Kind.INIT).exists()
    deleted = events.get(kind=TokenEvent.Kind.DELETED)
    assert deleted.actor == "olivia" and deleted.account is None
    page = operator.get(reverse("admin:accounts_tokenevent_changelist") + "?q=accounting").content.decode()
    assert "Account deleted" in page and "olivia" in page


def test_deleting_several_accounts_from_the_list_records_each(operator, account):
    other = make_account(account.application, identifier="sales", email="sales@contoso.com")
    operator.post(reverse("admin:accounts_account_changelist"), {
        "action": "delete_selected", "_selected_action": [account.pk, other.pk], "post": "yes"})
    assert not Account.objects.exists()
    assert set(TokenEvent.objects.filter(kind=TokenEvent.Kind.DELETED).values_list("account_identifier", flat=True)) \
        == {"accounting", "sales"}


def test_token_events_cannot_be_changed_or_deleted_in_the_admin(admin_client, account):
    event = account.events.first()
    assert admin_client.get(reverse("admin:accounts_tokenevent_delete", args=[event.pk])).status_code == 403
    code = event.code
    admin_client.post(reverse("admin:accounts_tokenevent_change", args=[event.pk]), {"code": "forged", "outcome": "x"})
    event.refresh_from_db()
    assert event.code == code and event.outcome == ""
