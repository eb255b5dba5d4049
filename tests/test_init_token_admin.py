"""Init. Token from the admin: device code through the real pages, client credentials at once."""
import re

import pytest
from django.urls import reverse

from accounts.models import Account, InitRequest, TokenEvent
from tests.factories import make_account, make_application

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(idp):
    return make_account(make_application(idp))


def start(client, account):
    return client.post(reverse("admin:accounts_account_init_token", args=[account.pk]))


def poll(client, init_request):
    response = client.post(reverse("admin:accounts_account_init_status", args=[init_request.pk]))
    assert response.status_code == 200
    return response.json()


def shown_code(page):
    return re.search(r"<strong>([A-Z0-9]{6,12})</strong>", page).group(1)


def test_device_code_page_shows_url_code_and_time_left(admin_client, account, idp):
    response = start(admin_client, account)
    assert response.status_code == 302
    page = admin_client.get(response.url).content.decode()
    assert shown_code(page) in idp.pending_user_codes()
    assert f"{idp.url}/devicelogin" in page
    assert "Time left" in page


def test_device_code_sign_in_activates_the_account_and_logs_the_operator(admin_client, admin_user, account, idp):
    page = admin_client.get(start(admin_client, account).url).content.decode()
    init_request = InitRequest.objects.get()
    assert poll(admin_client, init_request)["status"] == "pending"
    idp.approve(shown_code(page), account.email)
    InitRequest.objects.filter(pk=init_request.pk).update(next_poll_at=None)  # the interval has passed
    result = poll(admin_client, init_request)
    assert result["status"] == "succeeded"
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE
    assert account.token_initialized_by == admin_user.username
    assert account.access_token and account.refresh_token
    assert account.refresh_token_expiry_estimated  # Entra gives no refresh-token expiry
    event = account.events.filter(kind=TokenEvent.Kind.INIT).get()
    assert event.actor == admin_user.username
    back = admin_client.get(result["account_url"]).content.decode()
    assert "is initialised" in back


def test_each_poll_sends_at_most_one_request_and_honours_the_interval(admin_client, account, idp):
    idp.device_interval = 30
    start(admin_client, account)
    init_request = InitRequest.objects.get()
    InitRequest.objects.filter(pk=init_request.pk).update(next_poll_at=None)
    for _ in range(5):
        poll(admin_client, init_request)
    device_polls = [r for r in idp.token_requests if r["grant_type"].endswith("device_code")]
    assert len(device_polls) == 1


def test_slow_down_lengthens_the_interval(admin_client, account, idp):
    start(admin_client, account)
    init_request = InitRequest.objects.get()
    for _ in range(2):  # the second poll comes sooner than the provider's interval allows
        InitRequest.objects.filter(pk=init_request.pk).update(next_poll_at=None)
        poll(admin_client, init_request)
    init_request.refresh_from_db()
    assert init_request.interval >= idp.device_interval + 5


@pytest.mark.parametrize(
    "outcome, words, code",
    [("decline", "declined", "AADSTS70000"), ("expire", "expired", "AADSTS70019")],
)
def test_declined_or_expired_sign_in_is_shown_in_plain_words(admin_client, account, idp, outcome, words, code):
    page = admin_client.get(start(admin_client, account).url).content.decode()
    getattr(idp, outcome)(shown_code(page))
    init_request = InitRequest.objects.get()
    InitRequest.objects.filter(pk=init_request.pk).update(next_poll_at=None)
    result = poll(admin_client, init_request)
    assert result["status"] == "failed"
    assert words in result["error"] and code in result["error"]
    account.refresh_from_db()
    assert account.status == Account.Status.NEW
    assert account.events.filter(kind=TokenEvent.Kind.FAILURE).exists()


def test_unknown_client_id_fails_at_start_with_the_aadsts_code(admin_client, idp):
    account = make_account(make_application(idp, register=False))
    response = start(admin_client, account)
    assert response.status_code == 302
    page = admin_client.get(response.url).content.decode()
    assert "AADSTS700016" in page


def test_client_credentials_account_gets_its_token_at_once(admin_client, idp):
    account = make_account(make_application(idp, secret="app-secret"), flow="client_credentials")
    response = start(admin_client, account)
    assert response.url == reverse("admin:accounts_account_change", args=[account.pk])
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE and account.access_token
    assert not account.refresh_token
    assert idp.token_requests[-1]["scope"] == "https://outlook.office365.com/.default"


def test_client_credentials_with_a_wrong_secret_says_so(admin_client, idp):
    app = make_application(idp, secret="right")
    app.client_secret = "wrong"
    app.save()
    account = make_account(app, flow="client_credentials")
    start(admin_client, account)
    page = admin_client.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()
    assert "AADSTS7000215" in page
    account.refresh_from_db()
    assert account.status == Account.Status.NEW


def test_admin_action_initialises_several_accounts(admin_client, idp):
    app = make_application(idp, secret="app-secret")
    accounts = [make_account(app, identifier=f"box{i}", email=f"box{i}@contoso.com", flow="client_credentials")
                for i in range(3)]
    admin_client.post(reverse("admin:accounts_account_changelist"),
                      {"action": "init_token", "_selected_action": [a.pk for a in accounts]})
    assert Account.objects.filter(status=Account.Status.ACTIVE).count() == 3


def test_a_tenant_unknown_to_the_provider_is_shown_in_plain_words(admin_client, idp):
    account = make_account(make_application(idp, tenant="nonexistent-tenant.example"))
    page = admin_client.get(start(admin_client, account).url).content.decode()
    assert "did not accept the authority" in page and "nonexistent-tenant.example" in page
    account.refresh_from_db()
    assert account.status == Account.Status.NEW


def test_an_unreachable_authority_is_shown_in_plain_words(admin_client, idp):
    account = make_account(make_application(idp, authority_url="https://127.0.0.1:9"))
    page = admin_client.get(start(admin_client, account).url).content.decode()
    assert "Could not reach https://127.0.0.1:9" in page
