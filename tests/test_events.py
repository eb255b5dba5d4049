"""Token events and last errors: stored as a code with facts, shown in the reader's language and zone;
prune_events keeps the table bounded."""
from datetime import timedelta

import pytest
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Account, TokenEvent
from tests.factories import make_account, make_application
from tests.factories import run_command as run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("language_restored")]


@pytest.fixture
def active(idp, sign_in):
    return sign_in(make_account(make_application(idp)))


def account_page(client, account, language="en"):
    response = client.get(reverse("admin:accounts_account_change", args=[account.pk]), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response.content.decode()


def test_a_refresh_is_recorded_as_a_code_with_facts_not_a_sentence(active):
    Account.objects.filter(pk=active.pk).update(access_token_expires_at=timezone.now())
    run("refresh_tokens")
    event = active.events.get(kind=TokenEvent.Kind.REFRESH)
    assert event.code == "token.refreshed" and event.outcome == ""
    assert set(event.params) == {"expires_at"}


def test_an_event_written_in_english_is_read_in_french(admin_client, active):
    with translation.override("en"):  # as cron or a command would have written it
        assert active.events.get(kind=TokenEvent.Kind.INIT).text == f"Signed in as {active.email}."
    page = account_page(admin_client, active, "fr")
    assert f"Connecté en tant que {active.email}." in page
    assert f"Signed in as {active.email}." not in page


def test_events_show_their_time_in_the_configured_zone(admin_client, active, settings):
    settings.TIME_ZONE = "America/New_York"
    event = active.events.get(kind=TokenEvent.Kind.INIT)
    page = account_page(admin_client, active)
    assert "When (America/New_York)" in page
    assert timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S") in page


def test_events_written_before_codes_keep_their_words(admin_client, active):
    TokenEvent.objects.create(account=active, actor="cron", kind="refresh", outcome="Access token valid until then.")
    assert "Access token valid until then." in account_page(admin_client, active)


def test_a_summarised_event_says_how_many_times(admin_client, active, settings):
    settings.TIME_ZONE = "UTC"
    last = timezone.now()
    TokenEvent.objects.create(account=active, actor="api:erp", kind="read", code="token.read", params={"name": "erp"},
                              count=42, last_at=last)
    page = account_page(admin_client, active)
    assert f"Token read by API client erp. (42 times, the last at {last:%Y-%m-%d %H:%M} (UTC))" in page


def test_the_last_error_comes_with_its_cause_and_fix(admin_client, idp, active):
    idp.revoke(active.email)
    Account.objects.filter(pk=active.pk).update(access_token_expires_at=timezone.now())
    with pytest.raises(SystemExit):
        run("refresh_tokens")
    active.refresh_from_db()
    assert active.last_error_code == "AADSTS50173"
    assert active.last_error_params["provider_code"] == "AADSTS50173"
    page = account_page(admin_client, active)
    assert "AADSTS50173" in page
    assert "The refresh token was revoked" in page and "What to do:" in page


def test_an_english_cron_failure_reads_in_french(admin_client, idp, active):
    idp.revoke(active.email)
    Account.objects.filter(pk=active.pk).update(access_token_expires_at=timezone.now())
    with translation.override("en"), pytest.raises(SystemExit):
        run("refresh_tokens")
    page = account_page(admin_client, active, "fr")
    # Our words are French (an existing translation), Microsoft's own stay as Microsoft wrote them.
    assert "Microsoft a refusé le jeton d&#x27;actualisation : la boîte aux lettres doit être reconnectée" in page
    assert "Microsoft refused the refresh token" not in page
    assert "AADSTS50173: The provided grant has expired" in page


# --- prune_events ----------------------------------------------------------------------------------


def event(account, kind, days_ago):
    return TokenEvent.objects.create(account=account, account_identifier=account.identifier, actor="cron", kind=kind,
                                     code="token.refreshed",
                                     at=timezone.now() - timedelta(days=days_ago))


def test_prune_events_deletes_old_events_but_keeps_the_newest_of_each_kind(active):
    active.events.all().delete()
    old_refreshes = [event(active, "refresh", days) for days in (400, 300, 200)]
    old_failure = event(active, "failure", 500)
    recent = event(active, "refresh", 1)
    out, _ = run("prune_events", "--older-than", "90", "--batch-size", "1")
    assert "token events 3" in out
    assert set(active.events.values_list("pk", flat=True)) == {recent.pk, old_failure.pk}
    assert not TokenEvent.objects.filter(pk__in=[e.pk for e in old_refreshes]).exists()


def test_prune_events_keeps_the_retention_setting_by_default(active, settings):
    settings.OAUTHMAIL_EVENT_RETENTION_DAYS = 30
    keep, drop = event(active, "refresh", 10), event(active, "refresh", 40)
    event(active, "refresh", 5)
    run("prune_events")
    assert TokenEvent.objects.filter(pk=keep.pk).exists() and not TokenEvent.objects.filter(pk=drop.pk).exists()


def test_prune_events_refuses_a_retention_below_a_day():
    with pytest.raises(CommandError, match="1 day or more"):
        run("prune_events", "--older-than", "0")
