"""Init. Token by device code in a real browser (tests/browser.py): the page shows the code, follows the
sign-in by itself and returns to the account once the mailbox's user has approved it. An operator
(staff, "Mailbox operators") does it; a declined sign-in is shown to an administrator."""
import re

from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import Account
from tests.factories import make_account, make_application, make_staff


def start_init_token(page, account):
    """Open the account's page and click Init. Token, as an operator does."""
    page.goto(reverse("admin:accounts_account_change", args=[account.pk]))
    page.get_by_role("button", name="Init. Token").click()
    expect(page.locator(".init-status")).to_have_text("Waiting for sign-in")
    return page.locator(".init-user-code").inner_text()


def test_the_device_code_page_shows_the_code_follows_the_sign_in_and_returns_to_the_account(log_in, idp):
    page = log_in(make_staff("operator", "Mailbox operators"))
    account = make_account(make_application(idp))
    user_code = start_init_token(page, account)
    assert idp.pending_user_codes() == [user_code]
    time_left = page.locator(".init-seconds")
    expect(time_left).to_have_text(re.compile(r"^1[45]:\d\d$"))  # 15 minutes, counting down
    counted_from = time_left.get_attribute("data-seconds")
    expect(time_left).not_to_have_attribute("data-seconds", counted_from)

    idp.approve(user_code, account.email)

    expect(page.locator(".init-status")).to_have_text("Succeeded")  # the page asked by itself
    page.wait_for_url(re.compile(re.escape(reverse("admin:accounts_account_change", args=[account.pk]))))
    expect(page.locator(".messagelist")).to_contain_text("The token of accounting is initialised.")
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE


def test_a_declined_sign_in_stays_on_the_page_with_the_reason(admin_page, idp):
    account = make_account(make_application(idp))
    idp.decline(start_init_token(admin_page, account))

    expect(admin_page.locator(".init-status")).to_have_text("Failed")
    expect(admin_page.locator(".init-error")).to_be_visible()
    expect(admin_page.locator(".init-error")).not_to_be_empty()
    assert "/init-token/" in admin_page.url  # the operator reads why, and goes back with Back
