"""The dashboard and the account list in a real browser (tests/browser.py), 1366 pixels wide, with a realistic
amount of data: accounts in every status, long identifiers, addresses, application names and errors. Each
status count opens the filtered list; the list never scrolls sideways, filters by status and application,
and its per-row Init. Token button works for an app-only account and a device-code one."""
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Account, RefreshRun
from alerts.models import Alert, Channel, Delivery
from monitoring.facts import tokens_near_limit
from providers.models import Application
from relay.events import relay_event
from relay.services import relay_client_create
from tests.factories import make_account, make_application, make_google_application, make_staff

COUNTS = {"active": 18, "failing": 6, "reauth_required": 5, "new": 9}
ERROR = (
    "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2026-01-04T08:12:55Z "
    "and was inactive for 90.00:00:00. Trace ID: 0b8e7c1a-4d2f-4c3b-9a51-6f0e2d7c9b11 Correlation ID: "
    "5f2c1d3e-8a7b-4c6d-9e0f-1a2b3c4d5e6f Timestamp: 2026-04-04 08:13:02Z https://login.microsoftonline.com/error"
    "?code=700082&trace=0b8e7c1a4d2f4c3b9a516f0e2d7c9b115f2c1d3e8a7b4c6d9e0f1a2b3c4d5e6f"
)
OPERATOR, ADMINISTRATOR = "Mailbox operators", "OAuth administrators"


class Mailboxes:
    """Three applications with long names, 40 accounts, and what the dashboard shows around them."""

    def __init__(self, idp):
        self.app_only = make_application(idp, identifier="contoso-entra-id-production-tenant-paris-la-defense",
                                         name="Contoso: Exchange Online, app-only access for the ERP", secret="s3cret")
        self.delegated = make_application(idp, identifier="contoso-entra-id-delegated-mailboxes-lyon-part-dieu",
                                          name="Contoso: Exchange Online, delegated mailboxes of the Lyon site")
        self.google = make_google_application(idp, identifier="fabrikam-google-workspace-invoices-and-scans")
        applications = [self.app_only, self.delegated, self.google]
        accounts, n = [], 0
        for status, count in COUNTS.items():
            for _ in range(count):
                application = applications[n % 3]
                accounts.append(Account(
                    application=application, identifier=f"comptabilite-fournisseurs-factures-entrantes-{n:02d}",
                    name=f"Comptabilité fournisseurs, factures entrantes du site de Lyon Part-Dieu n° {n}",
                    email=f"comptabilite.fournisseurs.factures-{n:02d}@filiale-industrielle-rhone-alpes.contoso.com",
                    flow="client_credentials" if application == self.app_only else "device_code", status=status,
                    last_error=ERROR if status in ("failing", "reauth_required") else "",
                    access_token_expires_at=timezone.now() + timedelta(minutes=50) if status == "active" else None,
                    refresh_token_expires_at=timezone.now() + timedelta(days=9) if n % 7 == 0 else None,
                ))
                n += 1
        Account.objects.bulk_create(accounts)
        self.client_credentials = make_account(self.app_only, identifier="erp-app-only", email="erp@contoso.com",
                                               flow="client_credentials")
        self.device_code = make_account(self.delegated, identifier="scanner-device-code", email="scan@contoso.com")
        Application.objects.filter(pk=self.app_only.pk).update(
            client_secret_expires_on=timezone.localdate() + timedelta(days=12))
        RefreshRun.objects.create(finished_at=timezone.now() - timedelta(minutes=3), duration=4.2, refreshed=18,
                                  failed=11, skipped=0)
        channel = Channel.objects.create(name="Équipe informatique, astreinte de nuit et du week-end",
                                         kind="email", email_to="it@contoso.com")
        alert = Alert.objects.create(key="refresh_tokens:overdue", kind="refresh_overdue", state="never", params={})
        Delivery.objects.create(alert=alert, channel=channel, status="failed", error={"detail": ERROR})
        scanner, _password = relay_client_create(name="Scanner du 2e étage, bâtiment B, service comptabilité",
                                                 account=self.client_credentials, actor="test")
        for sent in (True, True, False):
            relay_event(account_id=self.client_credentials.pk, account_identifier="erp-app-only",
                        client_name=scanner.name, actor=scanner.actor, sent=sent, mail_from="erp@contoso.com",
                        rcpt_tos=["customer@example.com"], size=120_000, reply="250 2.0.0 OK")

    def expected(self, status, application=None):
        accounts = Account.objects.filter(status=status)
        return accounts.filter(application=application).count() if application else accounts.count()


@pytest.fixture
def mailboxes(idp, transactional_db):
    return Mailboxes(idp)


def assert_fits(page, area=None):
    """Neither the page nor `area` (a CSS selector) scrolls sideways."""
    widths = page.evaluate("""(area) => {
        const measured = {page: document.scrollingElement};
        if (area) measured[area] = document.querySelector(area);
        return Object.fromEntries(Object.entries(measured).map(([name, element]) =>
            [name, [element.scrollWidth, element.clientWidth]]));
    }""", area)
    assert page.viewport_size["width"] == 1366
    for name, (scroll, client) in widths.items():
        assert scroll <= client, f"{name} scrolls sideways: {scroll} pixels wide in {client}"


def assert_readable(page, cells):
    """No cell squeezed to a few letters a line by its long-worded neighbours."""
    narrowest = page.locator(cells).evaluate_all(
        "cells => Math.min(...cells.map(cell => cell.getBoundingClientRect().width))")
    assert narrowest >= 48, f"a cell of {cells} is {narrowest} pixels wide"


def rows(page):
    return page.locator("#result_list tbody tr")


def filter_by(page, title, choice):
    page.locator(f'#changelist-filter details[data-filter-title="{title}"]').get_by_role("link", name=choice).click()


@pytest.mark.parametrize("role", [ADMINISTRATOR, OPERATOR])
def test_the_dashboard_fits_and_each_status_count_opens_the_filtered_list(log_in, mailboxes, role):
    page = log_in(make_staff("someone", role))
    page.goto(reverse("admin:index"))
    for status, count in COUNTS.items():
        expect(page.locator(f"a.tile.{status} strong")).to_have_text(str(count + (status == "new") * 2))
    expect(page.locator("#credentials")).to_contain_text(mailboxes.app_only.identifier)
    expect(page.locator("#near-limit tbody tr")).to_have_count(tokens_near_limit().count())
    expect(page.locator("#relay-messages")).to_contain_text("2 messages relayed, 1 refused.")
    assert_fits(page)
    assert_readable(page, ".health table td")

    page.locator("a.tile.reauth_required").click()

    page.wait_for_url(re.compile(r"/admin/accounts/account/\?status__exact=reauth_required$"))
    expect(rows(page)).to_have_count(COUNTS["reauth_required"])
    expect(rows(page).first).to_contain_text("Re-authorisation required")
    assert_fits(page, "#changelist .results")


def test_the_account_list_fits_and_filters_by_status_and_application(log_in, mailboxes):
    page = log_in(make_staff("olivia", OPERATOR))  # with the widest list: an Init. Token button on each row
    page.goto(reverse("admin:accounts_account_changelist"))
    expect(rows(page)).to_have_count(sum(COUNTS.values()) + 2)
    expect(page.locator("#result_list tbody button.init-token")).to_have_count(sum(COUNTS.values()) + 2)
    assert_fits(page, "#changelist .results")
    assert_readable(page, "#result_list tbody td:not(.action-checkbox)")

    filter_by(page, "status", "Failing")
    expect(rows(page)).to_have_count(mailboxes.expected("failing"))
    filter_by(page, "application", str(mailboxes.delegated))

    page.wait_for_url(re.compile(rf"application__id__exact={mailboxes.delegated.pk}"))
    assert "status__exact=failing" in page.url
    expect(rows(page)).to_have_count(mailboxes.expected("failing", mailboxes.delegated))
    for row in rows(page).all():
        expect(row).to_contain_text(mailboxes.delegated.identifier)
        expect(row).to_contain_text("Failing")
    assert_fits(page, "#changelist .results")


def test_init_token_on_a_row_gives_an_app_only_account_its_token_and_opens_the_device_code_page(
    log_in, mailboxes, idp
):
    page = log_in(make_staff("olivia", OPERATOR))
    page.goto(reverse("admin:accounts_account_changelist") + "?q=erp-app-only")
    rows(page).filter(has_text="erp-app-only").get_by_role("button", name="Init. Token").click()

    expect(page.locator(".messagelist")).to_contain_text("The token of erp-app-only is initialised.")
    mailboxes.client_credentials.refresh_from_db()
    assert mailboxes.client_credentials.status == Account.Status.ACTIVE

    page.goto(reverse("admin:accounts_account_changelist"))
    rows(page).filter(has_text="scanner-device-code").get_by_role("button", name="Init. Token").click()

    page.wait_for_url(re.compile(r"/admin/accounts/account/init-token/\d+/"))
    expect(page.locator(".init-status")).to_have_text("Waiting for sign-in")
    assert idp.pending_user_codes() == [page.locator(".init-user-code").inner_text()]
