"""Identifiers and names refuse control, bidirectional and invisible characters, in the admin and in imports."""
import pytest
from django.urls import reverse

from accounts.models import Account
from providers.models import Application
from tests.factories import make_application
from tests.test_registry_admin import account_form, application_form, errors_of

pytestmark = pytest.mark.django_db

HIDDEN = {"\u202e": "U+202E (RIGHT-TO-LEFT OVERRIDE)", "\u200b": "U+200B (ZERO WIDTH SPACE)",
          "\x07": "U+0007", "\u2066": "U+2066 (LEFT-TO-RIGHT ISOLATE)", "\ufeff": "U+FEFF"}


@pytest.mark.parametrize("char", HIDDEN)
def test_an_account_identifier_refuses_a_hidden_character_by_code_point(admin_client, idp, char):
    app = make_application(idp)
    response = admin_client.post(reverse("admin:accounts_account_add"), account_form(app, identifier=f"sa{char}les"))
    assert HIDDEN[char] in " ".join(errors_of(response)["identifier"])
    assert not Account.objects.exists()


@pytest.mark.parametrize("char", ["\u202e", "\u200b"])
def test_an_application_identifier_and_name_refuse_hidden_characters(admin_client, char):
    response = admin_client.post(reverse("admin:providers_application_add"),
                                 application_form(identifier=f"con{char}toso", name=f"Con{char}toso"))
    errors = errors_of(response)
    assert HIDDEN[char] in " ".join(errors["identifier"]) and HIDDEN[char] in " ".join(errors["name"])
    assert not Application.objects.exists()


def test_an_account_name_refuses_a_bidi_override(admin_client, idp):
    app = make_application(idp)
    response = admin_client.post(reverse("admin:accounts_account_add"), account_form(app, name="Compta \u202egpj.exe"))
    assert "U+202E" in " ".join(errors_of(response)["name"])


def test_names_keep_accents_and_joiners(admin_client, idp):
    app = make_application(idp)
    name = "Comptabilité \u200c Zoë"  # ZWNJ: Persian and Indic spellings use it
    response = admin_client.post(reverse("admin:accounts_account_add"), account_form(app, name=name))
    assert response.status_code == 302
    assert Account.objects.get().name == name
