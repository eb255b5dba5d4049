"""The account list: status, last error and access-token expiry first, filters, an Init. Token button per row."""
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from tests.factories import make_account, make_application, make_staff

pytestmark = pytest.mark.django_db
LIST = "/admin/accounts/account/"


@pytest.fixture
def operator():
    return make_staff("olivia", "Mailbox operators")


def listing(client, query=""):
    response = client.get(LIST + query)
    assert response.status_code == 200
    return response.content.decode()


def test_status_last_error_and_expiry_come_first_with_the_zone_in_the_header(admin_client, idp, settings):
    settings.TIME_ZONE = "Europe/Paris"
    expires = timezone.now() + timedelta(minutes=40)
    error = "Microsoft refused the refresh token: the mailbox must be signed in again. " + "x" * 200
    make_account(make_application(idp), status="reauth_required", last_error=error, access_token_expires_at=expires)
    page = listing(admin_client)
    headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
    assert headers[:4] == ["account", "status_badge", "last_error_short", "access_token_expiry"]
    assert "Access token expires (Europe/Paris)" in page
    assert timezone.localtime(expires).strftime("%Y-%m-%d %H:%M") in page
    assert "Re-authorisation required" in page
    assert f'title="{error}">{error[:59]}…</span>' in page  # shortened; the whole of it on hover


def test_filters_by_status_and_application(admin_client, idp):
    contoso, fabrikam = make_application(idp), make_application(idp, identifier="fabrikam")
    make_account(contoso, identifier="a1", email="a1@contoso.com", status="failing")
    make_account(contoso, identifier="a2", email="a2@contoso.com", status="active")
    make_account(fabrikam, identifier="b1", email="b1@fabrikam.com", status="failing")
    page = listing(admin_client, f"?status__exact=failing&application__id__exact={contoso.pk}")
    assert ">a1<" in page and ">a2<" not in page and ">b1<" not in page


def test_each_row_has_an_init_token_button_that_posts_with_a_csrf_token(operator, idp):
    account = make_account(make_application(idp, secret="s3cret"), flow="client_credentials")
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    page = listing(client)
    url = reverse("admin:accounts_account_init_token", args=[account.pk])
    assert f'form="init-token-form" formaction="{url}"' in page
    form = re.search(r'<form id="init-token-form" method="post">(.*?)</form>', page, re.S).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    assert client.post(url).status_code == 403  # no CSRF token: refused
    response = client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE


def test_init_token_never_runs_on_a_get(admin_client, idp):
    account = make_account(make_application(idp, secret="s3cret"), flow="client_credentials")
    response = admin_client.get(reverse("admin:accounts_account_init_token", args=[account.pk]))
    assert response.status_code == 405
    account.refresh_from_db()
    assert account.status == Account.Status.NEW and not account.events.exists()


def test_no_init_token_button_for_staff_who_may_not_init_tokens(client, idp):
    viewer = User.objects.create_user("vic", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_account"))
    client.force_login(viewer)
    make_account(make_application(idp))
    page = listing(client)
    assert 'id="init-token-form"' not in page and "formaction" not in page
