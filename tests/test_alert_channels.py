"""Alert channels in the admin (administrators configure, operators look), the test button, and
several send_alerts at once."""
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, RefreshRun
from alerts.models import Alert, Channel, Delivery
from tests.factories import make_staff
from tests.webhook import WebhookReceiver

pytest.register_assert_rewrite("tests.fixtures_scale")
pytest_plugins = ["tests.fixtures_scale"]  # the shared_db fixture

from tests.fixtures_scale import make_world  # noqa: E402


@pytest.fixture
def receiver(idp_server):
    receiver = WebhookReceiver(idp_server.ca).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def administrator(client, db):
    client.force_login(make_staff("adam", "OAuth administrators"))
    return client


@pytest.fixture
def operator(client, db):
    client.force_login(make_staff("olivia", "Mailbox operators"))
    return client


def add_webhook(client, url, **fields):
    return client.post(reverse("admin:alerts_channel_add"), {
        "name": "Teams", "kind": "webhook", "is_active": "on", "email_to": "", "url": url, **fields,
    })


def test_an_administrator_adds_a_webhook_whose_secret_is_never_shown_again(administrator, receiver):
    response = add_webhook(administrator, receiver.url, new_secret="s3cret-signing-key")
    assert response.status_code == 302
    channel = Channel.objects.get()
    assert channel.secret == "s3cret-signing-key"
    assert "s3cret-signing-key" not in Channel.objects.values_list("secret", flat=True)[0]  # encrypted at rest
    page = administrator.get(reverse("admin:alerts_channel_change", args=[channel.pk])).content.decode()
    assert "s3cret-signing-key" not in page and "new_secret" in page


def test_a_webhook_needs_a_signing_secret_and_an_https_address(administrator):
    response = add_webhook(administrator, "http://hooks.example.com/x")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Enter an https:// address." in page and "Enter a signing secret" in page
    assert not Channel.objects.exists()


def test_an_e_mail_channel_checks_its_addresses(administrator):
    response = administrator.post(reverse("admin:alerts_channel_add"), {
        "name": "IT", "kind": "email", "is_active": "on", "email_to": "it@contoso.com, not-an-address", "url": "",
    })
    assert "“not-an-address” is not a valid e-mail address." in response.content.decode()


def test_the_test_button_sends_a_test_alert_and_says_so(administrator, receiver):
    channel = Channel(name="Teams", kind="webhook", url=receiver.url, is_active=False)  # may test before use
    channel.secret = "k"
    channel.save()
    url = reverse("admin:alerts_channel_test", args=[channel.pk])
    page = administrator.get(reverse("admin:alerts_channel_change", args=[channel.pk])).content.decode()
    assert f'action="{url}"' in page
    assert administrator.get(url).status_code == 405  # a POST only
    response = administrator.post(url, follow=True)
    assert "The test alert was sent to Teams." in response.content.decode()
    [request] = receiver.requests
    assert request.json["test"] is True and request.json["text"].startswith("Test alert from oauthmail")
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_a_failed_test_alert_says_why(administrator, receiver):
    receiver.answers = [404]
    channel = Channel(name="Teams", kind="webhook", url=receiver.url)
    channel.secret = "k"
    channel.save()
    response = administrator.post(reverse("admin:alerts_channel_test", args=[channel.pk]), follow=True)
    assert "The test alert to Teams failed: The webhook answered HTTP 404." in response.content.decode()
    assert len(receiver.requests) == 1  # a 404 is not worth retrying
    assert Delivery.objects.get().status == Delivery.Status.FAILED


def test_operators_see_channels_and_alerts_but_change_nothing(operator, receiver):
    channel = Channel.objects.create(name="IT", kind="email", email_to="it@contoso.com")
    assert operator.get(reverse("admin:alerts_channel_changelist")).status_code == 200
    assert operator.get(reverse("admin:alerts_alert_changelist")).status_code == 200
    assert operator.get(reverse("admin:alerts_delivery_changelist")).status_code == 200
    assert operator.get(reverse("admin:alerts_channel_add")).status_code == 403
    assert operator.post(reverse("admin:alerts_channel_test", args=[channel.pk])).status_code == 403
    page = operator.get(reverse("admin:alerts_channel_change", args=[channel.pk])).content.decode()
    assert "Send a test alert" not in page


@pytest.mark.postgres
def test_two_send_alerts_at_once_send_each_alert_exactly_once(shared_db, idp, receiver):
    world = make_world(shared_db, idp, count=30)
    world.accounts().update(status=Account.Status.FAILING, last_error="Microsoft is unavailable.")
    RefreshRun.objects.using(shared_db.alias).create(finished_at=timezone.now(), duration=1)
    channel = Channel(name="Teams", kind="webhook", url=receiver.url)
    channel.secret = "k"
    channel.save(using=shared_db.alias)
    processes = [shared_db.start("send_alerts") for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert Alert.objects.using(shared_db.alias).count() == 30
    sent = [alert["id"] for request in receiver.requests for alert in request.json["alerts"]]
    assert len(sent) == len(set(sent)) == 30
    recorded = sum(int(re.search(r"New alerts: (\d+)", out).group(1)) for out, _err in outputs)
    assert recorded == 30
    assert shared_db.call("send_alerts").strip().endswith("Deliveries sent: 0, failed: 0.")
