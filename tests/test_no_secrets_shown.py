"""No page, JSON answer or log line ever contains a client secret or a token."""
import logging
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Account, InitRequest
from tests.factories import make_account, make_application

pytestmark = pytest.mark.django_db

SECRET = "Very~Secret.Client-Value_42"


@pytest.fixture
def world(idp, admin_client):
    app = make_application(idp, secret=SECRET)
    app_only = make_account(app, identifier="robot", email="robot@contoso.com", flow="client_credentials")
    services.account_init_start(account=app_only, actor="test")
    delegated = make_account(app)
    admin_client.post(reverse("admin:accounts_account_init_token", args=[delegated.pk]))
    init_request = InitRequest.objects.get(account=delegated)
    idp.approve(init_request.user_code, delegated.email)
    InitRequest.objects.filter(pk=init_request.pk).update(next_poll_at=None)
    services.account_init_poll(request_id=init_request.pk, actor="test")
    Account.objects.filter(pk=delegated.pk).update(access_token_expires_at=timezone.now() + timedelta(minutes=1))
    call_command("refresh_tokens", stdout=open("/dev/null", "w"))
    app_only.refresh_from_db()
    delegated.refresh_from_db()
    assert delegated.status == "active" and app_only.status == "active"
    secrets = [SECRET, app_only.access_token, delegated.access_token, delegated.refresh_token]
    return app, [app_only, delegated], init_request, secrets


def pages(app, accounts, init_request):
    yield reverse("admin:index")
    yield reverse("admin:providers_application_changelist")
    for name in ("change", "history", "delete"):
        yield reverse(f"admin:providers_application_{name}", args=[app.pk])
    yield reverse("admin:accounts_account_changelist")
    for account in accounts:
        for name in ("change", "history", "delete"):
            yield reverse(f"admin:accounts_account_{name}", args=[account.pk])
    yield reverse("admin:accounts_account_init_page", args=[init_request.pk])


def test_no_admin_page_contains_a_secret_or_token(admin_client, world):
    app, accounts, init_request, secrets = world
    for url in pages(app, accounts, init_request):
        page = admin_client.get(url).content.decode()
        for secret in secrets:
            assert secret not in page, url


def test_the_poll_answer_contains_no_token(admin_client, world):
    _, _, init_request, secrets = world
    body = admin_client.post(reverse("admin:accounts_account_init_status", args=[init_request.pk])).content.decode()
    assert not any(secret in body for secret in secrets)


def test_no_log_line_contains_a_token(idp, caplog):
    caplog.set_level(logging.DEBUG)
    account = make_account(make_application(idp, secret=SECRET), flow="client_credentials")
    services.account_init_start(account=account, actor="test")
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now())
    call_command("refresh_tokens", stdout=open("/dev/null", "w"))
    account.refresh_from_db()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert SECRET not in logged and account.access_token not in logged
    assert not re.search(r"client_secret=[^&\s]+", logged)
