"""Business rules of the SMTP relay: relay clients, their passwords, and what a device may send. Keyword-only.

Called alike by the admin, the commands and the relay server (which calls them from its worker threads,
never from the event loop). A password is random (about 140 bits), so its SHA-256 is all that is kept and
all that is compared, in constant time, as for the token API's keys.
"""
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.connection import MailServer, NoMailServer, mail_server

from .models import RelayClient

log = logging.getLogger("relay")
# No 0/O, 1/l/I: a password is often typed on a printer's touch screen. 24 of 57 symbols: ~140 bits,
# and short enough for every device (Xerox accepts 31 characters).
PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
PASSWORD_LENGTH = 24
_NO_PASSWORD = hashlib.sha256(b"no such client").hexdigest()


def _digest(password):
    return hashlib.sha256(password.encode()).hexdigest()


def username_from_name(name):
    """A username a device can type, made from a client's name: "Scanner 2nd floor" -> "scanner-2nd-floor"."""
    username = re.sub(r"[^a-z0-9._@-]+", "-", name.lower()).strip("-.")
    return username[:63].rstrip("-.") or "relay"


@sensitive_variables("password")
def relay_client_new_password(*, client, actor):
    """Give the client a new password (replacing any old one) and return it: the only time it is seen."""
    password = "".join(secrets.choice(PASSWORD_ALPHABET) for _n in range(PASSWORD_LENGTH))
    client.password_hash = _digest(password)
    if client._state.adding:
        client.created_by = actor
    client.save()
    return password


@sensitive_variables("password")
def relay_client_create(*, name, account, actor, username="", networks="", hourly_limit=None):
    """A new active relay client sending as `account`; returns (client, password).

    Raises ValidationError (with the field at fault) for a bad or taken name, username or network."""
    client = RelayClient(name=name, username=username or username_from_name(name), account=account,
                         networks=networks, hourly_limit=hourly_limit)
    client.full_clean()
    with transaction.atomic():
        password = relay_client_new_password(client=client, actor=actor)
    return client, password


def relay_client_revoke(*, client, actor):
    RelayClient.objects.filter(pk=client.pk).update(is_active=False, revoked_at=timezone.now(), revoked_by=actor)
    client.refresh_from_db()


@dataclass(frozen=True)
class RelayIdentity:
    """Who logged in: kept for the SMTP session."""

    client_id: int
    name: str
    account_id: int
    account_identifier: str

    @property
    def actor(self):
        return f"relay:{self.name}"[:150]


@sensitive_variables("password")
def relay_client_authenticate(*, username, password, address):
    """The identity of the active client with this username and password, allowed to connect from
    `address`; None otherwise, whatever the reason (the device is told nothing more)."""
    client = RelayClient.objects.filter(username=username).select_related("account").only(
        "pk", "name", "password_hash", "is_active", "networks", "account__identifier"
    ).first()
    matches = hmac.compare_digest(client.password_hash if client else _NO_PASSWORD, _digest(password))
    if client is None:
        refused = "unknown user"
    elif not matches:
        refused = "wrong password"
    elif not client.is_active:
        refused = "revoked client"
    elif not client.allows(address):
        refused = "an address outside its networks"
    else:
        refused = ""
    if refused:  # for the journal; the device is told nothing more than 535
        log.warning("Relay login refused from %s for user %r: %s", address, username[:100], refused)
        return None
    RelayClient.objects.filter(pk=client.pk).update(last_used_at=timezone.now(), last_used_from=address)
    return RelayIdentity(client_id=client.pk, name=client.name, account_id=client.account_id,
                         account_identifier=client.account.identifier)


class RelayRefusal(Exception):
    """The relay refuses this message itself; `reply` is the SMTP answer for the device."""

    def __init__(self, reply):
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class Sending:
    """What one message may do, read when the device says MAIL FROM."""

    identity: RelayIdentity
    account_id: int
    email: str
    allowed: tuple  # the addresses the envelope sender and From may be: the mailbox's, then its send-as ones
    server: MailServer | None
    server_problem: str  # why there is no server, in plain words
    hourly_limit: int | None

    def allows(self, address):
        return address.lower() in {allowed.lower() for allowed in self.allowed}


def relay_sending(*, identity):
    """The account's addresses and server for a message of this client; RelayRefusal when it may send nothing."""
    client = RelayClient.objects.select_related("account__application").filter(pk=identity.client_id).first()
    if client is None or not client.is_active:
        raise RelayRefusal("550 5.7.1 This relay client was revoked")  # SMTP text: English, ASCII
    account = client.account
    try:
        server, problem = mail_server(account=account, protocol="smtp"), ""
    except NoMailServer as error:
        server, problem = None, str(error)
    allowed = {}
    for address in account.sender_addresses:
        allowed.setdefault(address.lower(), address)
    return Sending(
        identity=identity, account_id=account.pk, email=account.email, allowed=tuple(allowed.values()),
        server=server, server_problem=problem, hourly_limit=client.hourly_limit,
    )


def _hour_start(now):
    return now.replace(minute=0, second=0, microsecond=0)


def relay_quota_take(*, client_id, limit):
    """Count one message against the client's hourly limit; False when the limit is reached.

    One conditional UPDATE (two at the start of an hour), so processes and threads never overshoot."""
    hour = _hour_start(timezone.now())
    clients = RelayClient.objects.filter(pk=client_id)
    if clients.filter(Q(hour_started_at__isnull=True) | Q(hour_started_at__lt=hour)).update(
        hour_started_at=hour, hour_count=1
    ):
        return True
    return bool(clients.filter(hour_started_at=hour, hour_count__lt=limit).update(hour_count=F("hour_count") + 1))


def relay_quota_give_back(*, client_id):
    """A counted message was not sent after all."""
    hour = _hour_start(timezone.now())
    RelayClient.objects.filter(pk=client_id, hour_started_at=hour, hour_count__gt=0).update(
        hour_count=F("hour_count") - 1
    )


def relay_quota_left(*, client_id, limit):
    """Messages the client may still send this hour (read-only: the early check at MAIL FROM)."""
    hour = _hour_start(timezone.now())
    row = RelayClient.objects.filter(pk=client_id).values("hour_started_at", "hour_count").first()
    if row is None or row["hour_started_at"] is None or row["hour_started_at"] < hour:
        return limit
    return max(0, limit - row["hour_count"])


def messages_this_hour(client):
    hour = _hour_start(timezone.now())
    return client.hour_count if client.hour_started_at and client.hour_started_at >= hour else 0
