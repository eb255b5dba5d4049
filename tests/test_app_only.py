"""App-only tokens without a user: Microsoft by certificate, Google by service account with delegation."""
import datetime
import json
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Account
from providers.models import Application
from tests.factories import make_account

pytestmark = pytest.mark.django_db
PEM = serialization.Encoding.PEM


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(key):
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def self_signed(key, days=365):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oauthmail app-only")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256())
    )


def post_application(admin_client, **fields):
    data = {"identifier": "contoso", "name": "Contoso", "provider": "microsoft", "tenant": "contoso.onmicrosoft.com",
            "client_id": str(uuid.uuid4()), "authority_url": "", "scopes": "", "comments": ""}
    data.update(fields)
    return admin_client.post(reverse("admin:providers_application_add"), data)


@pytest.fixture
def certificate():
    key = new_key()
    return key, self_signed(key)


def test_certificate_upload_stores_the_key_encrypted_and_shows_thumbprint_and_expiry(admin_client, idp, certificate):
    key, cert = certificate
    upload = SimpleUploadedFile("app.pem", cert.public_bytes(PEM) + key_pem(key))
    response = post_application(admin_client, authority_url=idp.url, certificate_file=upload)
    assert response.status_code == 302
    app = Application.objects.get()
    assert app.certificate_thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    page = admin_client.get(reverse("admin:providers_application_change", args=[app.pk])).content.decode()
    assert app.certificate_thumbprint in page and "expires in 364 days" in page
    assert "PRIVATE KEY" not in page


def test_certificate_with_a_key_that_does_not_match_is_refused(admin_client, certificate):
    _, cert = certificate
    upload = SimpleUploadedFile("app.pem", cert.public_bytes(PEM))
    other_key = SimpleUploadedFile("key.pem", key_pem(new_key()))
    response = post_application(admin_client, certificate_file=upload, certificate_key_file=other_key)
    assert "does not belong to this certificate" in response.content.decode()
    assert not Application.objects.exists()


def test_a_file_that_is_not_a_certificate_is_refused(admin_client):
    response = post_application(admin_client, certificate_file=SimpleUploadedFile("x.pem", b"hello"))
    assert "not a PEM certificate" in response.content.decode()


def test_certificate_gives_an_app_only_token_and_refresh_renews_it(admin_client, idp, certificate):
    key, cert = certificate
    post_application(
        admin_client, authority_url=idp.url,
        certificate_file=SimpleUploadedFile("cert.pem", cert.public_bytes(PEM)),
        certificate_key_file=SimpleUploadedFile("key.pem", key_pem(key)),
    )
    app = Application.objects.get()
    idp.add_client(app.client_id, certificate_pem=cert.public_bytes(PEM).decode())
    account = make_account(app, flow="client_credentials")
    admin_client.post(reverse("admin:accounts_account_init_token", args=[account.pk]))
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE
    assert idp.token_requests[-1]["grant_type"] == "client_credentials"
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now())
    call_command("refresh_tokens", stdout=open("/dev/null", "w"))
    account.refresh_from_db()
    assert account.last_refreshed_at is not None and not account.refresh_token


def test_a_certificate_replaced_in_the_admin_signs_the_next_refresh(admin_client, idp):
    (first_key, first), (second_key, second) = [(key, self_signed(key)) for key in (new_key(), new_key())]
    post_application(admin_client, authority_url=idp.url,
                     certificate_file=SimpleUploadedFile("app.pem", first.public_bytes(PEM) + key_pem(first_key)))
    app = Application.objects.get()
    idp.add_client(app.client_id, certificate_pem=first.public_bytes(PEM).decode())
    account = make_account(app, flow="client_credentials")
    admin_client.post(reverse("admin:accounts_account_init_token", args=[account.pk]))  # signed with the first
    idp.add_client(app.client_id, certificate_pem=second.public_bytes(PEM).decode())  # the first one is removed
    response = admin_client.post(reverse("admin:providers_application_change", args=[app.pk]), {
        "identifier": app.identifier, "name": app.name, "provider": app.provider, "tenant": app.tenant,
        "client_id": app.client_id, "authority_url": app.authority_url, "scopes": "", "comments": "",
        "certificate_file": SimpleUploadedFile("new.pem", second.public_bytes(PEM) + key_pem(second_key)),
    })
    assert response.status_code == 302
    call_command("refresh_tokens", account.identifier, stdout=open("/dev/null", "w"))
    assert [r["status"] for r in idp.token_requests] == [200, 200]


def test_unregistered_certificate_is_refused_with_the_aadsts_code(admin_client, idp, certificate):
    key, cert = certificate
    post_application(admin_client, authority_url=idp.url,
                     certificate_file=SimpleUploadedFile("app.pem", cert.public_bytes(PEM) + key_pem(key)))
    app = Application.objects.get()
    other = new_key()
    idp.add_client(app.client_id, certificate_pem=self_signed(other).public_bytes(PEM).decode())
    account = make_account(app, flow="client_credentials")
    init_request = services.account_init_start(account=account, actor="test")
    assert init_request.status == "failed" and "AADSTS700027" in init_request.error


def test_app_only_account_needs_credentials_on_its_application(admin_client, idp):
    app = Application.objects.create(identifier="public", name="P", tenant="common", client_id=str(uuid.uuid4()))
    response = admin_client.post(reverse("admin:accounts_account_add"), {
        "application": app.pk, "identifier": "robot", "name": "R", "email": "r@contoso.com",
        "flow": "client_credentials", "verify_certificate": "on",
    })
    assert "App-only access needs credentials" in response.content.decode()


def service_account_json(key, email="robot@project.iam.gserviceaccount.com"):
    return json.dumps({
        "type": "service_account", "project_id": "project", "private_key_id": "k1",
        "private_key": key_pem(key).decode(), "client_email": email, "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    }).encode()


def post_google_application(admin_client, idp, **fields):
    return post_application(admin_client, provider="google", tenant="", client_id="robot.apps.googleusercontent.com",
                            identifier="workspace", authority_url=idp.url, **fields)


def test_service_account_impersonates_the_mailbox(admin_client, idp):
    key = new_key()
    public = key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    idp.add_client("robot@project.iam.gserviceaccount.com", service_account_public_key_pem=public)
    response = post_google_application(
        admin_client, idp, service_account_file=SimpleUploadedFile("key.json", service_account_json(key))
    )
    assert response.status_code == 302
    app = Application.objects.get()
    assert app.service_account_email == "robot@project.iam.gserviceaccount.com"
    account = make_account(app, email="boss@contoso.com", flow="client_credentials")
    call_command("init_token", account.identifier, stdout=open("/dev/null", "w"))
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE
    granted = idp.valid_access_token(account.access_token)
    assert granted["email"] == "boss@contoso.com" and granted["scope"] == "https://mail.google.com/"


def test_service_account_without_delegation_for_the_scope_fails_clearly(admin_client, idp):
    key = new_key()
    public = key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    idp.add_client("robot@project.iam.gserviceaccount.com", service_account_public_key_pem=public,
                   delegated_scopes=["https://www.googleapis.com/auth/calendar"])
    post_google_application(admin_client, idp,
                            service_account_file=SimpleUploadedFile("key.json", service_account_json(key)))
    account = make_account(Application.objects.get(), email="boss@contoso.com", flow="client_credentials")
    init_request = services.account_init_start(account=account, actor="test")
    assert init_request.status == "failed" and "domain-wide delegation" in init_request.error


def test_a_json_file_that_is_not_a_service_account_key_is_refused(admin_client, idp):
    response = post_google_application(
        admin_client, idp, service_account_file=SimpleUploadedFile("key.json", b'{"type": "authorized_user"}')
    )
    assert "not a service account key" in response.content.decode()
