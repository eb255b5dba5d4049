"""What a process keeps between refreshes (providers/microsoft.py: one msal application per client,
authority and credential; providers/http.py: each thread's session, its CA bundle and proxies read
from the environment once) must never outlive what it was made from."""
import socket
from io import StringIO

import pytest
import requests
import trustme
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from providers import http
from tests.factories import make_account, make_application
from tests.webhook import WebhookReceiver

pytestmark = pytest.mark.django_db
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY")


def due_account(idp, app, **fields):
    """A delegated account holding a refresh token the provider issued, due at once."""
    account = make_account(app, **fields)
    Account.objects.filter(pk=account.pk).update(refresh_token=idp.issue_refresh_token(app.client_id, account.email))
    return account


def refresh(account):
    """`refresh_tokens` for the account; returns it as stored afterwards."""
    try:
        call_command("refresh_tokens", account.identifier, stdout=StringIO(), stderr=StringIO())
    except SystemExit as exit:  # the account failed
        assert exit.code == 1
    account.refresh_from_db()
    return account


def refresh_again(account):
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now())
    return refresh(account)


def change_application(admin_client, app, **fields):
    data = {"identifier": app.identifier, "name": app.name, "provider": app.provider, "tenant": app.tenant,
            "client_id": app.client_id, "authority_url": app.authority_url, "scopes": app.scopes, "comments": ""}
    response = admin_client.post(reverse("admin:providers_application_change", args=[app.pk]), {**data, **fields})
    assert response.status_code == 302, response.content.decode()[:2000]


def test_a_client_secret_changed_in_the_admin_is_sent_at_the_next_refresh(admin_client, idp):
    app = make_application(idp, secret="the-first-secret")
    account = due_account(idp, app)
    assert refresh(account).status == Account.Status.ACTIVE
    idp.add_client(app.client_id, secret="the-second-secret")  # the first one is revoked at the provider
    change_application(admin_client, app, new_client_secret="the-second-secret")
    account = refresh_again(account)
    assert account.status == Account.Status.ACTIVE, account.last_error
    assert idp.token_requests[-1]["status"] == 200


def test_a_changed_tenant_sends_the_next_refresh_to_the_new_authority(admin_client, idp):
    app = make_application(idp)
    account = due_account(idp, app)
    refresh(account)
    change_application(admin_client, app, tenant="fabrikam.onmicrosoft.com")
    assert refresh_again(account).status == Account.Status.ACTIVE
    assert [r["path"].split("/")[1] for r in idp.token_requests] == ["contoso.onmicrosoft.com",
                                                                     "fabrikam.onmicrosoft.com"]


def test_each_app_only_refresh_asks_the_provider_for_a_new_token(admin_client, idp):
    app = make_application(idp, secret="s3cret")
    account = make_account(app, flow="client_credentials")
    admin_client.post(reverse("admin:accounts_account_init_token", args=[account.pk]))
    first = Account.objects.get(pk=account.pk).access_token
    second = refresh(account).access_token
    third = refresh(account).access_token
    assert [r["grant_type"] for r in idp.token_requests] == ["client_credentials"] * 3
    assert len({first, second, third}) == 3


def test_a_provider_whose_certificate_is_not_trusted_is_never_sent_a_request(idp):
    untrusted = WebhookReceiver(trustme.CA()).start()
    try:
        app = make_application(idp, authority_url=untrusted.url.removesuffix("/hooks/oauthmail"))
        account = refresh(due_account(idp, app))
        assert account.status == Account.Status.FAILING and account.last_error_code == "network"
        assert untrusted.requests == []
    finally:
        untrusted.stop()


def test_a_token_request_to_a_host_whose_certificate_is_not_trusted_is_not_sent(idp):
    untrusted = WebhookReceiver(trustme.CA()).start()
    try:
        with pytest.raises(requests.exceptions.SSLError):
            http.client.post(untrusted.url, data={"grant_type": "refresh_token", "refresh_token": "a-refresh-token"})
        assert untrusted.requests == []
    finally:
        untrusted.stop()


def test_a_token_request_answered_with_a_redirect_is_not_sent_again(idp):
    account = due_account(idp, make_application(idp))
    token_endpoint = f"{idp.url}/{account.application.tenant}/oauth2/v2.0/token"
    idp.fail_next(1, status=307, location=token_endpoint, body={"error": "invalid_request"})
    account = refresh(account)
    assert account.status == Account.Status.FAILING
    assert len(idp.token_requests) == 1  # the refresh token went out once, not again to the Location


@pytest.fixture
def no_proxy_variables(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_proxy_set_in_the_environment_is_used(idp, no_proxy_variables):
    account = due_account(idp, make_application(idp))
    no_proxy_variables.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")  # nothing listens there
    account = refresh(account)
    assert account.status == Account.Status.FAILING and account.last_error_code == "network"
    assert idp.token_requests == []


def test_hosts_named_in_no_proxy_are_reached_directly(idp, no_proxy_variables):
    account = due_account(idp, make_application(idp))
    no_proxy_variables.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    no_proxy_variables.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert refresh(account).status == Account.Status.ACTIVE
    assert len(idp.token_requests) == 1
