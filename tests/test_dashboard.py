"""The admin index opens on a dashboard, for both roles: accounts by status, what expires, refresh runs, alerts."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, RefreshRun
from alerts.models import Alert, Channel, Delivery
from providers.models import Application
from tests.factories import make_account, make_application, make_google_application, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["OAuth administrators", "Mailbox operators"])
def staff_client(request, client):
    client.force_login(make_staff("someone", request.param))
    return client


@pytest.fixture
def app(idp):
    return make_application(idp, secret="s3cret")


def dashboard(client):
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


def accounts_in(app, **counts):
    n = 0
    for status, count in counts.items():
        for _ in range(count):
            make_account(app, identifier=f"box{n}", email=f"box{n}@contoso.com", status=status)
            n += 1


def test_accounts_by_status_each_link_to_the_filtered_list(staff_client, app):
    accounts_in(app, active=3, failing=2, reauth_required=1, new=4)
    page = dashboard(staff_client)
    changelist = reverse("admin:accounts_account_changelist")
    for status, count in [("active", 3), ("failing", 2), ("reauth_required", 1), ("new", 4)]:
        assert f'href="{changelist}?status__exact={status}"><strong>{count}</strong>' in page
    assert "10 accounts" in page
    listed = staff_client.get(f"{changelist}?status__exact=failing").content.decode()
    assert listed.count('class="field-account"') == 2


def test_djangos_app_list_stays_below_the_dashboard(staff_client):
    page = dashboard(staff_client)
    assert page.index('id="refresh-runs"') < page.index('class="app-accounts module')


def test_expiring_and_expired_secrets_and_certificates_are_listed(staff_client, app, idp, settings):
    settings.TIME_ZONE = "Europe/Paris"
    Application.objects.filter(pk=app.pk).update(client_secret_expires_on=timezone.localdate() + timedelta(days=12))
    old = make_application(idp, identifier="legacy", secret="x")
    old.certificate_key, old.certificate_expires_at = "key", timezone.now() - timedelta(days=2)
    old.save()
    far = make_application(idp, identifier="fine", secret="x")
    Application.objects.filter(pk=far.pk).update(client_secret_expires_on=timezone.localdate() + timedelta(days=90))
    page = dashboard(staff_client)
    section = page[page.index('id="credentials"'):]
    assert "contoso" in section and ">12<" in section
    assert "legacy" in section and "EXPIRED" in section
    assert "fine" not in section
    assert "expires (Europe/Paris)" in section


def test_refresh_tokens_near_their_limit_and_google_testing_apps_are_listed(staff_client, app, idp):
    accounts_in(app, active=2)
    Account.objects.filter(identifier="box0").update(refresh_token_expires_at=timezone.now() + timedelta(days=10))
    Account.objects.filter(identifier="box1").update(refresh_token_expires_at=timezone.now() + timedelta(days=80))
    testing = make_google_application(idp, google_testing=True)
    make_account(testing, identifier="gbox", email="g@contoso.com", flow="authorization_code", status="active",
                 refresh_token_expires_at=timezone.now() + timedelta(days=1))
    page = dashboard(staff_client)
    near = page[page.index('id="near-limit"'):page.index('id="credentials"')]
    assert "box0" in near and "gbox" in near and "box1" not in near
    assert "workspace" in page[page.index('id="testing-apps"'):]


def test_the_last_refresh_run_and_whether_it_is_overdue(staff_client, app, settings):
    settings.TIME_ZONE = "Europe/Paris"
    accounts_in(app, active=1)
    assert "refresh_tokens has never run" in dashboard(staff_client)
    finished = timezone.now() - timedelta(minutes=5)
    RefreshRun.objects.create(finished_at=finished, duration=2.5, refreshed=7, failed=1, skipped=2)
    page = dashboard(staff_client)
    when = timezone.localtime(finished).strftime("%Y-%m-%d %H:%M")
    assert f"Last run finished at {when} (Europe/Paris) in 2.5 s: 7 refreshed, 1 failed, 2 skipped." in page
    assert "Overdue" not in page
    RefreshRun.objects.update(finished_at=timezone.now() - timedelta(hours=2))
    assert "Overdue: no run for more than 30 minutes" in dashboard(staff_client)


def test_the_last_alerts_with_where_they_went(staff_client):
    channel = Channel.objects.create(name="IT team", kind="email", email_to="it@contoso.com")
    alert = Alert.objects.create(key="refresh_tokens:overdue", kind="refresh_overdue", state="never", params={})
    Delivery.objects.create(alert=alert, channel=channel, status="failed", error={"detail": "refused"})
    page = dashboard(staff_client)
    section = page[page.index('id="last-alerts"'):]
    assert "refresh_tokens has never run" in section and "IT team" in section and "Failed" in section


def test_no_smtp_relay_section_while_the_relay_has_no_client(staff_client):
    assert 'id="relay-messages"' not in dashboard(staff_client)  # its counts: tests/test_relay_counts.py


def test_without_an_active_channel_the_dashboard_says_alerts_go_nowhere(staff_client):
    assert "No active alert channel" in dashboard(staff_client)


def test_the_dashboard_costs_the_same_queries_for_5_or_300_accounts(admin_client, app):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            dashboard(admin_client)
        return len(captured)

    accounts_in(app, active=3, failing=2)
    few = queries()
    Account.objects.bulk_create([
        Account(application=app, identifier=f"bulk{n}", name="n", email=f"b{n}@contoso.com", status="failing",
                refresh_token_expires_at=timezone.now() + timedelta(days=3))
        for n in range(300)
    ])
    assert queries() == few
