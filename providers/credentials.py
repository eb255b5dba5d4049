"""Reading uploaded app-only credentials: a certificate and its key (Microsoft), a service account key (Google).

Each reader returns the values to store or raises ValidationError saying what is wrong with the file.
"""
import json
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


@dataclass
class Certificate:
    key_pem: str
    certificate_pem: str
    thumbprint: str
    expires_at: datetime


def read_certificate(certificate_data: bytes, key_data: bytes = b"", passphrase: str = "") -> Certificate:
    """A PEM certificate and its private key (in the same file or a second one)."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_data)
    except ValueError:
        raise ValidationError(
            _("The certificate file is not a PEM certificate (-----BEGIN CERTIFICATE-----).")
        ) from None
    key_source = key_data or certificate_data
    if b"PRIVATE KEY-----" not in key_source:
        raise ValidationError(_("The private key is missing: upload it in the same PEM file or as a second file."))
    try:
        key = serialization.load_pem_private_key(key_source, password=passphrase.encode() or None)
    except TypeError:
        raise ValidationError(_("The private key is protected by a passphrase: type it too.")) from None
    except ValueError:
        raise ValidationError(_("The private key could not be read (wrong passphrase, or not a PEM key).")) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    if key.public_key().public_bytes(encoding, public) != certificate.public_key().public_bytes(encoding, public):
        raise ValidationError(_("The private key does not belong to this certificate."))
    key_pem = key.private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return Certificate(
        key_pem=key_pem,
        certificate_pem=certificate.public_bytes(encoding).decode(),
        thumbprint=certificate.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - Entra's thumbprint is SHA-1
        expires_at=certificate.not_valid_after_utc,
    )


def read_service_account(data: bytes) -> tuple[str, str]:
    """A Google service account key (JSON). Returns (the JSON to store, the service account's e-mail)."""
    try:
        info = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValidationError(_("The service account key is not a JSON file.")) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValidationError(_("This JSON file is not a service account key (\"type\": \"service_account\")."))
    missing = [name for name in ("client_email", "private_key", "private_key_id") if not info.get(name)]
    if missing:
        raise ValidationError(_("The service account key lacks %(fields)s.") % {"fields": ", ".join(missing)})
    try:
        serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    except ValueError:
        raise ValidationError(_("The service account key's private_key cannot be read.")) from None
    return json.dumps(info), info["client_email"]
