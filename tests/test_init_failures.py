"""Init. Token that fails: the account says so, the page offers Start again, an unreadable saved state and
Google's reworded scopes are clear messages, never a 500."""
import re

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse

from accounts.models import Account, InitRequest, TokenEvent
from oauthmail.crypto import Ciphertext
from tests.factories import make_account, make_application, make_google_application
from tests.test_browser_sign_in import go_to_provider, page_text, provider_redirects_back, sign_in
from tests.test_init_token_admin import poll, shown_code, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(idp):
    return make_account(make_application(idp))


def expire_and_poll(client, account, idp):
    page = client.get(start(client, account).url).content.decode()
    idp.expire(shown_code(page))
    init_request = InitRequest.objects.get(account=account, status=InitRequest.Status.PENDING)
    InitRequest.objects.filter(pk=init_request.pk).update(next_poll_at=None)
    return init_request, poll(client, init_request)


def start_again_form(page, url):
    """The opening tag of the Start again form posting to `url`."""
    return re.search(rf'<form[^>]*action="{re.escape(url)}"[^>]*>', page).group(0)


def test_a_failed_init_token_is_the_accounts_last_error(admin_client, account, idp):
    _, result = expire_and_poll(admin_client, account, idp)
    assert result["status"] == "failed"
    account.refresh_from_db()
    assert account.status == Account.Status.NEW
    assert account.last_error.startswith("Init. Token failed:") and "AADSTS70019" in account.last_error
    page = page_text(admin_client.get(reverse("admin:accounts_account_change", args=[account.pk])))
    assert "AADSTS70019" in page


def test_a_failed_init_token_leaves_a_working_token_as_it_is(admin_client, idp, sign_in):
    account = sign_in(make_account(make_application(idp)))
    token = account.access_token
    expire_and_poll(admin_client, account, idp)
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE and account.access_token == token
    assert "Init. Token failed" in account.last_error


def test_the_page_of_a_failed_code_offers_start_again_which_starts_a_new_one(admin_client, account, idp):
    init_request, _ = expire_and_poll(admin_client, account, idp)
    page = page_text(admin_client.get(reverse("admin:accounts_account_init_page", args=[init_request.pk])))
    again = reverse("admin:accounts_account_init_token", args=[account.pk])
    form = start_again_form(page, again)
    assert 'method="post"' in form and " hidden" not in form
    response = admin_client.post(again)
    assert response.status_code == 302
    assert InitRequest.objects.filter(account=account, status=InitRequest.Status.PENDING).count() == 1


def test_a_pending_code_shows_start_again_only_once_it_fails(admin_client, account):
    page = page_text(admin_client.get(start(admin_client, account).url))
    again = reverse("admin:accounts_account_init_token", args=[account.pk])
    assert " hidden" in start_again_form(page, again)


def test_a_state_no_key_decrypts_is_a_clear_message_on_the_poll_and_the_page(admin_client, account, settings):
    start(admin_client, account)
    init_request = InitRequest.objects.get()
    settings.OAUTHMAIL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the key it was saved with is gone
    InitRequest.objects.filter(pk=init_request.pk).update(next_poll_at=None)
    result = poll(admin_client, init_request)
    assert result["status"] == "failed" and "cannot be decrypted" in result["error"]
    assert "start Init. Token again" in result["error"]
    page = admin_client.get(reverse("admin:accounts_account_init_page", args=[init_request.pk]))
    assert page.status_code == 200 and "cannot be decrypted" in page_text(page)


def test_a_browser_sign_in_whose_state_no_key_decrypts_is_a_clear_message(admin_client, idp):
    account = make_account(make_application(idp, secret="web-secret"), flow="authorization_code")
    callback = provider_redirects_back(go_to_provider(admin_client, account))
    other_key = Fernet(Fernet.generate_key())  # as if saved under a key since removed
    InitRequest.objects.update(state=Ciphertext(other_key.encrypt(b"{}").decode()))
    response = admin_client.get(callback, follow=True)
    assert response.status_code == 200 and "cannot be decrypted" in page_text(response)


@pytest.fixture
def google_account(idp):
    return make_account(make_google_application(idp), flow="authorization_code")


def test_google_rewording_the_scopes_still_stores_the_tokens(admin_client, google_account, idp):
    idp.set(google_rewrites_scopes=True)  # email -> .../auth/userinfo.email, no openid
    response = sign_in(admin_client, google_account)
    assert "is initialised" in page_text(response)
    google_account.refresh_from_db()
    assert google_account.status == Account.Status.ACTIVE and google_account.refresh_token
    assert google_account.signed_in_as == google_account.email


def test_google_without_the_mail_scope_is_refused_clearly(admin_client, google_account, idp):
    idp.set(google_rewrites_scopes=True, google_withheld_scopes=["https://mail.google.com/"])
    response = sign_in(admin_client, google_account)
    assert response.status_code == 200
    assert "Google did not grant https://mail.google.com/" in page_text(response)
    google_account.refresh_from_db()
    assert google_account.status == Account.Status.NEW and not google_account.access_token
    assert google_account.events.filter(kind=TokenEvent.Kind.FAILURE).exists()
