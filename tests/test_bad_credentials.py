"""Uploaded app-only credentials that cannot work get a clear form error, and nothing is stored."""
import datetime
import json
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from providers.models import Application
from tests.test_app_only import PEM, key_pem, post_application, self_signed

pytestmark = pytest.mark.django_db
# Built at run time: a DEBUG page shows the source lines around each frame, and these must be found
# only where a frame's variables would leak them.
PASSPHRASE, CLIENT_SECRET = "-".join(["Passphrase", "Secret", "42"]), "-".join(["Client", "Secret", "42"])


def broken_library(certificate_data):
    raise RuntimeError("a bug deep inside the library")


def service_account_json(**overrides):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = {"type": "service_account", "client_email": "robot@project.iam.gserviceaccount.com",
            "private_key": key_pem(key).decode(), "private_key_id": "abc123", "client_id": "1234"}
    info.update(overrides)
    return json.dumps(info).encode()


def post_google(admin_client, data):
    return post_application(admin_client, provider="google", tenant="", client_id="x.apps.googleusercontent.com",
                            service_account_file=SimpleUploadedFile("key.json", data))


def form_errors(response):
    assert response.status_code == 200, response.status_code
    return " ".join(str(e) for errors in response.context["adminform"].form.errors.values() for e in errors)


@pytest.mark.parametrize("data, expected", [
    (b"[" * 30_000 + b"]" * 30_000, "not a JSON file"),
    (service_account_json(private_key=["-----BEGIN PRIVATE KEY-----"]), "private_key must be text"),
    (service_account_json(client_email={"a": 1}), "client_email must be text"),
    (service_account_json(client_email="a" * 300 + "@project.iam.gserviceaccount.com"), "at most 254 characters"),
    (service_account_json(client_email="not an address"), "not an e-mail address"),
    (service_account_json(private_key=key_pem(ed25519.Ed25519PrivateKey.generate()).decode()),
     "type Ed25519, but Google signs only with RSA keys"),
], ids=["deeply-nested", "key-not-text", "email-not-text", "email-too-long", "email-invalid", "ed25519-key"])
def test_a_bad_service_account_key_is_refused_clearly(admin_client, data, expected):
    assert expected in form_errors(post_google(admin_client, data))
    assert not Application.objects.exists()


def key_pair(kind):
    return {
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "dsa": lambda: dsa.generate_private_key(key_size=2048),
        "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
    }[kind]()


@pytest.mark.parametrize("kind, named", [("ed25519", "Ed25519"), ("dsa", "DSA"), ("ec", "EC")])
def test_a_certificate_whose_key_msal_cannot_sign_with_is_refused(admin_client, kind, named):
    key = key_pair(kind)
    cert = self_signed(key) if kind != "ed25519" else _ed25519_certificate(key)
    upload = SimpleUploadedFile("app.pem", cert.public_bytes(PEM) + key_pem(key))
    errors = form_errors(post_application(admin_client, certificate_file=upload))
    assert f"type {named}" in errors and "signs only with RSA keys" in errors
    assert not Application.objects.exists()


def _ed25519_certificate(key):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, None))


def test_a_passphrase_typed_for_a_key_without_one_says_so(admin_client):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    upload = SimpleUploadedFile("app.pem", self_signed(key).public_bytes(PEM) + key_pem(key))
    errors = form_errors(post_application(admin_client, certificate_file=upload, certificate_passphrase="hunter2"))
    assert "not protected by a passphrase: leave the passphrase empty" in errors
    assert not Application.objects.exists()


def test_a_service_account_key_protected_by_a_passphrase_is_refused(admin_client):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    locked = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(b"pw")).decode()
    errors = form_errors(post_google(admin_client, service_account_json(private_key=locked)))
    assert "protected by a passphrase" in errors


def test_a_client_secret_expiry_in_the_past_is_refused(admin_client):
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    response = post_application(admin_client, new_client_secret="s", client_secret_expires_on=yesterday.isoformat())
    assert "This date is in the past" in form_errors(response)
    assert not Application.objects.exists()


def test_secrets_held_while_reading_credentials_stay_out_of_a_debug_error_page(admin_user, settings, monkeypatch):
    """Whatever goes wrong while the form holds the secret, the passphrase and the key, Django's DEBUG
    page (the technical 500 reporter) lists the local variables of every frame: ours must be hidden."""
    import providers.credentials

    settings.DEBUG = True
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed(key)
    private = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(PASSPHRASE.encode()))

    monkeypatch.setattr(providers.credentials.x509, "load_pem_x509_certificate", broken_library)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.post(reverse("admin:providers_application_add"), {
        "identifier": "contoso", "name": "Contoso", "provider": "microsoft", "tenant": "contoso.onmicrosoft.com",
        "client_id": str(uuid.uuid4()), "new_client_secret": CLIENT_SECRET,
        "certificate_passphrase": PASSPHRASE,
        "certificate_file": SimpleUploadedFile("app.pem", cert.public_bytes(PEM)),
        "certificate_key_file": SimpleUploadedFile("key.pem", private),
    })
    page = response.content.decode()
    assert response.status_code == 500 and "a bug deep inside the library" in page  # the DEBUG page itself
    assert CLIENT_SECRET not in page
    assert PASSPHRASE not in page
    assert "ENCRYPTED PRIVATE KEY" not in page and private.decode().splitlines()[1] not in page
