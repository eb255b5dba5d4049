"""The token API under attack: wrong keys are throttled per address, other methods get the JSON 405."""
import pytest
from django.test import Client

from api.models import KeyFailures
from tests.factories import make_account, make_application
from tests.test_api import create_client

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # api/lookup.py: SQL by hand

URL = "/api/v1/accounts/accounting/token"


@pytest.fixture
def key(idp, sign_in):
    sign_in(make_account(make_application(idp)))
    return create_client("erp", "accounting")


def get(client, key, address, **headers):
    return client.get(URL, HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR=address, **headers)


def guess(client, key, address, times, **headers):
    tag, prefix, _secret = key.split("_", 2)
    return [get(client, f"{tag}_{prefix}_guess{n}", address, **headers).status_code for n in range(times)]


def test_after_20_wrong_keys_a_minute_the_address_gets_429_with_retry_after(client, key, settings):
    assert settings.OAUTHMAIL_API_KEY_FAILURES == 20
    assert guess(client, key, "203.0.113.9", 20) == [401] * 20
    response = get(client, "om_0000_another-guess", "203.0.113.9")
    assert response.status_code == 429
    assert response.json()["error"] == "too_many_attempts"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert get(client, key, "203.0.113.9").status_code == 429  # even the right key, from there


def test_the_right_key_keeps_working_from_other_addresses(client, key):
    guess(client, key, "203.0.113.9", 25)
    assert get(client, key, "198.51.100.7").status_code == 200


def test_the_block_ends_with_the_minute(client, key):
    from datetime import timedelta

    from django.utils import timezone

    guess(client, key, "203.0.113.9", 21)
    KeyFailures.objects.update(window_start=timezone.now() - timedelta(seconds=61))
    assert get(client, key, "203.0.113.9").status_code == 200


def test_a_successful_read_writes_no_throttle_row(client, key):
    for _ in range(3):
        assert get(client, key, "198.51.100.7").status_code == 200
    assert not KeyFailures.objects.exists()


def test_a_forged_forwarded_for_does_not_escape_the_throttle(client, key):
    codes = [get(client, f"om_0000_guess{n}", "203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
             for n in range(22)]
    assert codes[-1] == 429


def test_behind_a_configured_proxy_each_client_is_counted_apart(client, key, settings):
    settings.OAUTHMAIL_PROXY_COUNT = 1
    guess(client, key, "10.0.0.1", 21, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert get(client, key, "10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    assert get(client, key, "10.0.0.1", HTTP_X_FORWARDED_FOR="spoofed, 198.51.100.7").status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_get_the_json_405_even_with_csrf_checks(key, method):
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(URL, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed" and response["Allow"] == "GET"
