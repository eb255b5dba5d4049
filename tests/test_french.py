"""The French catalogue, through the real entry points: the admin in French, and a command's error."""
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Account, TokenEvent
from accounts.services.tokens import log_event
from providers.models import Application

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("language_restored")]


@pytest.fixture
def account():
    app = Application.objects.create(identifier="contoso", name="C", tenant="common", client_id=str(uuid.uuid4()))
    return Account.objects.create(application=app, identifier="sales", name="S", email="s@contoso.com")


def change_page(admin_client, account, language):
    url = reverse("admin:accounts_account_change", args=[account.pk])
    response = admin_client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response.content.decode()


def test_the_account_page_speaks_french(admin_client, account):
    page = change_page(admin_client, account, "fr")
    assert "Qui, quand" in page  # the "Who, when" section
    assert "Serveurs de messagerie" in page  # the "Mail servers" section
    assert "Flux de connexion" in page  # the "sign-in flow" field
    assert "Âge du jeton d&#x27;actualisation" in page  # the "refresh token age" field
    assert "Init. Token" in page  # the action keeps the name users know
    assert "Who, when" not in page
    assert "Mail servers" not in page


def test_the_account_page_stays_english_for_english_readers(admin_client, account):
    page = change_page(admin_client, account, "en")
    assert "Who, when" in page
    assert "Qui, quand" not in page


def test_show_token_for_an_unknown_account_says_so_in_french():
    with translation.override("fr"), pytest.raises(CommandError) as raised:
        call_command("show_token", "nobody")
    assert str(raised.value) == "Aucun compte avec l'identifiant « nobody »."


def test_a_forbidden_identifier_is_refused_in_french(account):
    account.identifier = "sales team"
    with translation.override("fr"), pytest.raises(ValidationError) as raised:
        account.full_clean()
    assert "L'identifiant ne peut pas contenir un espace." in raised.value.message_dict["identifier"][0]


@pytest.mark.parametrize(("days", "expected"), [(1, "1 jour"), (2, "2 jours")])
def test_the_refresh_token_age_uses_french_plurals(admin_client, account, days, expected):
    issued_at = timezone.now() - timedelta(days=days, hours=1)
    Account.objects.filter(pk=account.pk).update(refresh_token_issued_at=issued_at)
    assert f'<div class="readonly">{expected}</div>' in change_page(admin_client, account, "fr")


def test_the_dashboard_speaks_french(admin_client, account):
    page = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "1 compte" in page  # the accounts' heading, in the singular
    assert "Jetons d'actualisation qui expirent bientôt s'ils ne sont pas utilisés" in page
    assert "refresh_tokens n'a pas encore tourné." in page
    assert "Applications et paramètres" in page
    assert "Applications and settings" not in page


def test_a_token_event_written_in_english_is_read_in_french(admin_client, account):
    expires_at = timezone.now() + timedelta(minutes=20)
    with translation.override("en"):  # as cron writes it, whatever its language
        log_event(account=account, actor="cron", kind=TokenEvent.Kind.FALLBACK, code="token.stored_handed_out",
                  params={"expires_at": expires_at.isoformat()})
    page = change_page(admin_client, account, "fr")
    assert "Jeton enregistré fourni" in page  # the event's kind
    assert "le jeton d&#x27;accès enregistré, valide jusqu&#x27;au" in page  # what happened
    assert "was handed out" not in page
