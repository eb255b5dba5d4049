import ipaddress
import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Account

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,63}$")  # what every printer's screen accepts (Xerox: 63)


def validate_username(value):
    if not USERNAME_PATTERN.match(value):
        raise ValidationError(
            _("Use 1 to 63 letters, digits, dots, hyphens, underscores or @ (what every device can type)."),
            code="invalid",
        )


def network_list(text):
    """The networks written in `text` (CIDR or single addresses, one per line or comma-separated)."""
    return [ipaddress.ip_network(item, strict=False) for item in text.replace(",", " ").split()]


def ip_address(text):
    """An address as a connection gives it; an IPv4 client of a dual-stack listener ([::]) as IPv4."""
    ip = ipaddress.ip_address(text)
    return ip.ipv4_mapped or ip if ip.version == 6 else ip


def in_networks(address, networks):
    ip = ip_address(address)
    return any(ip in network for network in networks)


def validate_networks(text):
    for item in text.replace(",", " ").split():
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValidationError(
                _("“%(network)s” is not a network: write an address (192.168.10.25) or a CIDR block "
                  "(192.168.10.0/24)."), params={"network": item}, code="invalid",
            ) from None


class RelayClient(models.Model):
    """A device (printer, scanner, old ERP) that logs in to the SMTP relay with a user and a password
    and sends as one account. The password is shown once, at creation; only its SHA-256 is kept."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    username = models.CharField(
        _("username"), max_length=63, unique=True, validators=[validate_username],
        help_text=_("What the device sends as its SMTP user. Blank: made from the name."),
    )
    account = models.ForeignKey(
        Account, models.CASCADE, related_name="relay_clients", verbose_name=_("account"),
        help_text=_("The mailbox this device sends as: its token is used, and From must be one of its addresses."),
    )
    networks = models.TextField(
        _("allowed networks"), blank=True, validators=[validate_networks],
        help_text=_("The addresses the device may connect from: CIDR blocks or single addresses, one per line or "
                    "comma-separated (192.168.10.0/24, 10.1.2.3). Blank: any address."),
    )
    hourly_limit = models.PositiveIntegerField(
        _("messages per hour"), null=True, blank=True,
        help_text=_("At most this many messages in each clock hour; more are refused with a temporary error "
                    "(the device retries). Blank: no limit."),
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Untick, or use the Revoke action, to refuse its password from now on.")
    )
    comments = models.TextField(_("comments"), blank=True)
    password_hash = models.CharField(max_length=64, editable=False)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    last_used_from = models.GenericIPAddressField(_("last used from"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    revoked_by = models.CharField(_("revoked by"), max_length=150, blank=True, editable=False)
    # The hourly limit's counter: messages sent since `hour_started_at` (the start of a clock hour).
    hour_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    hour_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("relay client")
        verbose_name_plural = _("relay clients")
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def actor(self):
        """How token events name this client."""
        return f"relay:{self.name}"[:150]

    def allows(self, address):
        """May a device connect from `address` (an IP address as text)?"""
        return not self.networks.strip() or in_networks(address, network_list(self.networks))
