"""Encryption at rest for secrets: client secrets, tokens, keys.

One small field over `cryptography`'s MultiFernet. Keys come from OAUTHMAIL_ENCRYPTION_KEYS
(comma-separated): the first encrypts, every key decrypts, so a new key can be put first and
`manage.py rotate_encryption_keys` re-encrypts everything with it before the old key is dropped.
"""
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .texts import render


class DecryptionError(Exception):
    """A stored secret that none of the configured keys can decrypt; `what` names it."""

    def __init__(self, message, *, what=""):
        super().__init__(message)
        self.what = what


@lru_cache(maxsize=4)
def _fernet(keys):
    return MultiFernet([Fernet(key) for key in keys])


def fernet():
    return _fernet(tuple(settings.OAUTHMAIL_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


@lru_cache(maxsize=1024)
def _decrypt(keys, ciphertext):
    """The plain text of a ciphertext, remembered: a token read decrypts the same access token for as long
    as it lives (a Fernet decryption is a good part of a read's CPU). The process holds the keys anyway."""
    return _fernet(keys).decrypt(ciphertext.encode()).decode()


def decrypt(ciphertext: str, *, what="") -> str:
    try:
        return _decrypt(tuple(settings.OAUTHMAIL_ENCRYPTION_KEYS), str(ciphertext))
    except InvalidToken:
        what = what or gettext("a secret")
        raise DecryptionError(render("token.decryption", {"what": what}), what=what) from None


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the first key, whichever key encrypted it."""
    try:
        return fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            gettext("Cannot re-encrypt a secret: none of the keys in OAUTHMAIL_ENCRYPTION_KEYS fits.")
        ) from None


class Ciphertext(str):
    """A value as the database holds it: encrypted. Saved back as it is, never encrypted twice."""


class DecryptingAttribute(DeferredAttribute):
    """Decrypts on attribute access, so loading rows (lists, bulk work) decrypts nothing."""

    def __get__(self, instance, cls=None):
        value = super().__get__(instance, cls)
        if isinstance(value, Ciphertext):
            return decrypt(value, what=f"{self.field.model._meta.label}.{self.field.name}")
        return value

    def __set__(self, instance, value):
        # Defining __set__ makes this a data descriptor, so reads always pass through __get__.
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A text field stored encrypted. An empty value is stored empty, so "is it set?" needs no key.

    Python code reads and assigns plain text (`app.client_secret = "..."`); the database only
    ever sees ciphertext. It is not editable: forms never render it (use a write-only form field).
    """

    description = _("Encrypted text")
    descriptor_class = DecryptingAttribute

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        return Ciphertext(value) if value else ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if isinstance(value, Ciphertext):
            return str(value)
        return Ciphertext(encrypt(value)) if value else ""


def is_set(instance, field_name):
    """Whether an encrypted field holds a value, without decrypting it."""
    return bool(instance.__dict__.get(field_name) if field_name in instance.__dict__ else getattr(instance, field_name))
