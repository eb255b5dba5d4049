"""Init. Token by browser sign-in (authorization code + PKCE), Microsoft and Google, through the real views."""
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from accounts.models import Account, TokenEvent
from tests.factories import make_account, make_application, make_google_application

pytestmark = pytest.mark.django_db


def go_to_provider(client, account):
    response = client.post(reverse("admin:accounts_account_init_token", args=[account.pk]))
    assert response.status_code == 302
    return response.url


def provider_redirects_back(authorize_url):
    """The operator's browser at the provider: it signs in and is sent back with a code (or an error)."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    return f"{back.path}?{back.query}"


def sign_in(client, account):
    return client.get(provider_redirects_back(go_to_provider(client, account)), follow=True)


def page_text(response):
    return response.content.decode()


@pytest.fixture(params=["microsoft", "google"])
def account(request, idp):
    if request.param == "microsoft":
        app = make_application(idp, secret="web-secret")
    else:
        app = make_google_application(idp)
    return make_account(app, flow="authorization_code")


def test_sign_in_request_carries_pkce_login_hint_and_state(admin_client, account):
    query = parse_qs(urlsplit(go_to_provider(admin_client, account)).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["login_hint"] == [account.email]
    assert query["state"][0]
    assert query["redirect_uri"] == ["http://testserver/oauth/callback/"]


def test_google_sign_in_asks_for_offline_access_and_consent(admin_client, idp):
    account = make_account(make_google_application(idp), flow="authorization_code")
    query = parse_qs(urlsplit(go_to_provider(admin_client, account)).query)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]


def test_browser_sign_in_stores_tokens_and_returns_to_the_account(admin_client, admin_user, account, idp):
    response = sign_in(admin_client, account)
    assert response.redirect_chain[-1][0] == reverse("admin:accounts_account_change", args=[account.pk])
    assert "is initialised" in page_text(response)
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE and account.refresh_token
    assert account.signed_in_as == account.email
    assert account.events.get(kind=TokenEvent.Kind.INIT).actor == admin_user.username
    assert idp.valid_access_token(account.access_token)["email"] == account.email


def test_browser_sign_in_token_can_be_refreshed(admin_client, account, idp):
    from accounts import services

    sign_in(admin_client, account)
    account.refresh_from_db()
    tokens = services.token_refresh(account=account, actor="test")
    assert idp.valid_access_token(tokens.access_token)


def test_replayed_callback_is_refused_and_changes_nothing(admin_client, account):
    callback = provider_redirects_back(go_to_provider(admin_client, account))
    admin_client.get(callback)
    account.refresh_from_db()
    first_token = account.access_token
    response = admin_client.get(callback, follow=True)
    assert "already used" in page_text(response)
    account.refresh_from_db()
    assert account.access_token == first_token


def test_tampered_state_is_refused_and_nothing_stored(admin_client, account):
    callback = provider_redirects_back(go_to_provider(admin_client, account))
    response = admin_client.get(callback.replace("state=", "state=x"), follow=True)
    assert "does not match" in page_text(response)
    account.refresh_from_db()
    assert account.status == Account.Status.NEW and not account.access_token


def test_state_from_another_operators_session_is_refused(admin_client, client, account, django_user_model):
    callback = provider_redirects_back(go_to_provider(admin_client, account))
    other = django_user_model.objects.create_superuser("eve", "eve@contoso.com", "pw")
    client.force_login(other)
    response = client.get(callback, follow=True)
    assert "does not match" in page_text(response)
    account.refresh_from_db()
    assert account.status == Account.Status.NEW


def test_access_denied_is_shown_and_nothing_stored(admin_client, account, idp):
    idp.deny_next_sign_in()
    response = sign_in(admin_client, account)
    assert "denied" in page_text(response)
    account.refresh_from_db()
    assert account.status == Account.Status.NEW and not account.refresh_token


def test_someone_else_signing_in_is_refused_with_their_name(admin_client, account, idp):
    idp.next_sign_in = "intruder@contoso.com"
    response = sign_in(admin_client, account)
    assert "intruder@contoso.com signed in" in page_text(response)
    account.refresh_from_db()
    assert account.status == Account.Status.NEW and not account.access_token


def test_identity_check_ignores_case(admin_client, account, idp):
    idp.next_sign_in = account.email.upper()
    sign_in(admin_client, account)
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE


def test_shared_mailbox_accepts_its_named_sign_in_user(admin_client, idp):
    app = make_application(idp, secret="web-secret")
    account = make_account(app, email="shared@contoso.com", flow="authorization_code",
                           sign_in_user="delegate@contoso.com")
    idp.next_sign_in = "delegate@contoso.com"
    response = sign_in(admin_client, account)
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE
    assert "shared mailbox" in account.events.get(kind=TokenEvent.Kind.INIT).text
    assert "is initialised" in page_text(response)


def test_device_code_signed_in_by_someone_else_is_refused(admin_client, idp):
    from accounts.models import InitRequest

    account = make_account(make_application(idp))
    admin_client.post(reverse("admin:accounts_account_init_token", args=[account.pk]))
    init_request = InitRequest.objects.get()
    idp.approve(init_request.user_code, "intruder@contoso.com")
    InitRequest.objects.filter(pk=init_request.pk).update(next_poll_at=None)
    result = admin_client.post(reverse("admin:accounts_account_init_status", args=[init_request.pk])).json()
    assert result["status"] == "failed" and "intruder@contoso.com signed in" in result["error"]
    account.refresh_from_db()
    assert not account.access_token


def test_application_page_shows_the_redirect_uri_to_register(admin_client, idp):
    app = make_application(idp)
    page = page_text(admin_client.get(reverse("admin:providers_application_change", args=[app.pk])))
    assert "http://testserver/oauth/callback/" in page


def test_google_account_form_refuses_the_device_code_and_says_why(admin_client, idp):
    app = make_google_application(idp)
    response = admin_client.post(reverse("admin:accounts_account_add"), {
        "application": app.pk, "identifier": "gmail", "name": "G", "email": "g@contoso.com", "flow": "device_code",
        "verify_certificate": "on",
    })
    assert "does not allow the device-code flow" in page_text(response)
    assert not Account.objects.exists()


def test_google_testing_app_warns_about_the_refresh_token_age(admin_client, idp):
    app = make_google_application(idp, google_testing=True)
    account = make_account(app, flow="authorization_code")
    sign_in(admin_client, account)
    page = page_text(admin_client.get(reverse("admin:accounts_account_change", args=[account.pk])))
    assert "0 days" in page and "expire 7 days after sign-in" in page
    account.refresh_from_db()
    assert (account.refresh_token_expires_at - account.refresh_token_issued_at).days == 7
