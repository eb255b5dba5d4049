"""Messages the SMTP relay sent and refused, counted: on the dashboard (the last 24 hours, with links to the
events and the relay clients), on the account's page, and in /metrics as totals that only grow, whatever
prune_events deletes. A device (Python's smtplib) sends through the real relay to the test Dovecot."""
import smtplib
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

pytest.register_assert_rewrite("tests.relay_support")
pytest_plugins = ["tests.relay_support"]

from accounts.models import TokenEvent  # noqa: E402
from tests.factories import make_staff  # noqa: E402
from tests.factories import run_command as run  # noqa: E402
from tests.relay_support import message, send  # noqa: E402
from tests.test_metrics import TOKEN, scrape  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)
EVENTS = reverse("admin:accounts_tokenevent_changelist")


def relay_messages(relay, relay_tls, device, account, *, sent=1):
    """`sent` messages relayed, and one refused: its sender is not the account's."""
    for _ in range(sent):
        assert send(relay, relay_tls, device, message(account.email)) == {}
    with pytest.raises(smtplib.SMTPSenderRefused):
        send(relay, relay_tls, device, message("boss@contoso.com"))


def dashboard(client):
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    page = response.content.decode()
    return page[page.index('id="relay-messages"'):page.index('id="near-limit"')]


def test_the_dashboard_counts_the_last_24_hours_messages_with_links_to_them(
    admin_client, relay, relay_tls, device, mail_account
):
    relay_messages(relay, relay_tls, device, mail_account, sent=2)
    TokenEvent.objects.create(account=mail_account, account_identifier=mail_account.identifier, actor="relay:old",
                              kind=TokenEvent.Kind.RELAY_SENT, at=timezone.now() - timedelta(hours=25))
    section = dashboard(admin_client)
    assert "In the last 24 hours:" in section
    assert f'<a href="{EVENTS}?kind__exact=relay_sent">2 messages relayed</a>' in section  # not the older one
    assert f'<a href="{EVENTS}?kind__exact=relay_refused">1 refused</a>' in section
    assert f'href="{reverse("admin:relay_relayclient_changelist")}"' in section
    refused = admin_client.get(f"{EVENTS}?kind__exact=relay_refused").content.decode()
    assert "&lt;boss@contoso.com&gt; to" in refused and "&lt;compta@contoso.com&gt; to" not in refused  # only those


def test_operators_see_the_counts_but_no_link_to_the_relay_clients(client, relay, relay_tls, device, mail_account):
    relay_messages(relay, relay_tls, device, mail_account)
    client.force_login(make_staff("olivia", "Mailbox operators"))
    section = dashboard(client)
    assert "1 message relayed</a>" in section and "1 refused</a>" in section
    assert reverse("admin:relay_relayclient_changelist") not in section


def test_the_account_page_counts_its_own_messages(admin_client, relay, relay_tls, device, mail_account):
    relay_messages(relay, relay_tls, device, mail_account, sent=2)
    page = admin_client.get(reverse("admin:accounts_account_change", args=[mail_account.pk])).content.decode()
    assert "SMTP relay, last 24 hours" in page and "2 relayed, 1 refused." in page


def test_metrics_count_every_message_and_never_go_down_when_events_are_pruned(
    client, settings, relay, relay_tls, device, mail_account
):
    settings.OAUTHMAIL_METRICS_TOKEN = TOKEN
    relay_messages(relay, relay_tls, device, mail_account, sent=2)
    totals = {("oauthmail_relay_messages_total", (("outcome", "sent"),)): 2,
              ("oauthmail_relay_messages_total", (("outcome", "refused"),)): 1}
    assert totals.items() <= scrape(client).items()
    TokenEvent.objects.update(at=timezone.now() - timedelta(days=3))
    run("prune_events", "--older-than", "1")
    assert TokenEvent.objects.filter(kind=TokenEvent.Kind.RELAY_SENT).count() == 1  # the newest is kept
    assert totals.items() <= scrape(client).items()
