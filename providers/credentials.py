"""Reading uploaded app-only credentials: a certificate and its key (Microsoft), a service account key (Google).

Each reader returns the values to store or raises ValidationError saying what is wrong with the file.
"""
import json
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

EMAIL_MAX_LENGTH = 254
KEY_KINDS = {ed25519.Ed25519PrivateKey: "Ed25519", ed448.Ed448PrivateKey: "Ed448", dsa.DSAPrivateKey: "DSA",
             ec.EllipticCurvePrivateKey: "EC (elliptic curve)"}


@dataclass
class Certificate:
    key_pem: str
    certificate_pem: str
    thumbprint: str
    expires_at: datetime


def _load_key(pem: bytes, passphrase: str, *, what: str):
    """The private key in `pem`; ValidationError saying what is wrong (passphrase missing or superfluous)."""
    try:
        return serialization.load_pem_private_key(pem, password=passphrase.encode() or None)
    except TypeError:
        if passphrase:
            raise ValidationError(_(
                "%(what)s is not protected by a passphrase: leave the passphrase empty."
            ) % {"what": what}) from None
        raise ValidationError(_("%(what)s is protected by a passphrase: type it too.") % {"what": what}) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValidationError(_(
            "%(what)s could not be read (a wrong passphrase, or not a PEM private key)."
        ) % {"what": what}) from None


def _require_rsa(key, *, what: str, who: str):
    """msal signs Entra's client assertion with RS256/PS256 and google-auth a service account's with RS256:
    an RSA key or nothing."""
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = next((name for cls, name in KEY_KINDS.items() if isinstance(key, cls)), type(key).__name__)
        raise ValidationError(_(
            "%(what)s is a key of type %(kind)s, but %(who)s signs only with RSA keys: create an RSA key and "
            "certificate (e.g. openssl req -x509 -newkey rsa:2048 ...)."
        ) % {"what": what, "kind": kind, "who": who})


@sensitive_variables()
def read_certificate(certificate_data: bytes, key_data: bytes = b"", passphrase: str = "") -> Certificate:
    """A PEM certificate and its private key (in the same file or a second one)."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_data)
    except (ValueError, UnsupportedAlgorithm):
        raise ValidationError(
            _("The certificate file is not a PEM certificate (-----BEGIN CERTIFICATE-----).")
        ) from None
    key_source = key_data or certificate_data
    if b"PRIVATE KEY-----" not in key_source:
        raise ValidationError(_("The private key is missing: upload it in the same PEM file or as a second file."))
    key = _load_key(key_source, passphrase, what=_("The private key"))
    _require_rsa(key, what=_("The private key"), who=_("Microsoft Entra ID"))
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


@sensitive_variables()
def read_service_account(data: bytes) -> tuple[str, str]:
    """A Google service account key (JSON). Returns (the JSON to store, the service account's e-mail)."""
    try:
        info = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested thousands deep
        raise ValidationError(_("The service account key is not a JSON file.")) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValidationError(_("This JSON file is not a service account key (\"type\": \"service_account\")."))
    missing = [name for name in ("client_email", "private_key", "private_key_id") if not info.get(name)]
    if missing:
        raise ValidationError(_("The service account key lacks %(fields)s.") % {"fields": ", ".join(missing)})
    not_text = [name for name in ("client_email", "private_key", "private_key_id") if not isinstance(info[name], str)]
    if not_text:
        raise ValidationError(_("In the service account key, %(fields)s must be text.") % {
            "fields": ", ".join(not_text)})
    email = info["client_email"]
    try:
        if len(email) > EMAIL_MAX_LENGTH:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError:
        raise ValidationError(_(
            "The service account key's client_email is not an e-mail address of at most %(max)d characters."
        ) % {"max": EMAIL_MAX_LENGTH}) from None
    what = _("The service account key's private_key")
    key = _load_key(info["private_key"].encode(), "", what=what)
    _require_rsa(key, what=what, who=_("Google"))
    return json.dumps(info), email
