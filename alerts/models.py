"""Alerts: where they go (channels), what was noticed (alerts), and each sending (deliveries).

An alert is kept as a code with facts and written at sending time in the site's language
(LANGUAGE_CODE), on the admin's pages in the reader's. `AlertState` holds, per condition, the last
state alerted: a condition is sent once until it changes, by whichever process claims the change.
"""
import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from oauthmail.crypto import EncryptedTextField
from oauthmail.texts import facts_text
from providers.models import validate_https_url

from .texts import alert_subject, alert_text


def split_addresses(text):
    return [address for address in re.split(r"[\s,;]+", text or "") if address]


class Channel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", _("E-mail")
        WEBHOOK = "webhook", _("Webhook (JSON POST; Microsoft Teams, Slack …)")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.EMAIL)
    is_active = models.BooleanField(_("active"), default=True, help_text=_("Untick to stop sending to it."))
    email_to = models.TextField(
        _("e-mail addresses"), blank=True,
        help_text=_("E-mail: the recipients, separated by commas or new lines. Sent with Django's mail settings."),
    )
    url = models.CharField(
        _("webhook URL"), max_length=500, blank=True, validators=[validate_https_url],
        help_text=_("Webhook: the https:// address to POST the alerts to, as JSON."),
    )
    secret = EncryptedTextField(_("signing secret"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("alert channel")
        verbose_name_plural = _("alert channels")
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def recipients(self):
        return split_addresses(self.email_to)

    def clean(self):
        if self.kind == self.Kind.EMAIL:
            if not self.recipients:
                raise ValidationError({"email_to": _("Enter at least one address.")})
            for address in self.recipients:
                try:
                    validate_email(address)
                except ValidationError:
                    raise ValidationError({"email_to": _("“%(address)s” is not a valid e-mail address.")
                                           % {"address": address}}) from None
        elif not self.url:
            raise ValidationError({"url": _("Enter the webhook's https:// address.")})


class AlertState(models.Model):
    """The last state alerted for one condition (an account's status, a secret's expiry …)."""

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32)
    state = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.key}={self.state}"


class Alert(models.Model):
    class Kind(models.TextChoices):
        ACCOUNT_STATUS = "account_status", _("Account status")
        CREDENTIAL_EXPIRY = "credential_expiry", _("Secret or certificate expiry")
        REFRESH_TOKEN_LIMIT = "refresh_token_limit", _("Refresh token near its limit")
        GOOGLE_TESTING = "google_testing", _("Google app in Testing")
        REFRESH_OVERDUE = "refresh_overdue", _("refresh_tokens overdue")
        TEST = "test", _("Test alert")

    created_at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    key = models.CharField(_("condition"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    state = models.CharField(_("state"), max_length=32)
    params = models.JSONField(_("facts"), default=dict)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.subject

    @property
    def subject(self):
        return alert_subject(self)

    @property
    def text(self):
        return alert_text(self)


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    alert = models.ForeignKey(Alert, models.CASCADE, related_name="deliveries", verbose_name=_("alert"))
    channel = models.ForeignKey(Channel, models.SET_NULL, null=True, related_name="deliveries",
                                verbose_name=_("channel"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    error = models.JSONField(_("last error"), default=dict, blank=True)  # facts: see oauthmail/texts.py
    claim_id = models.CharField(max_length=36, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("alert sent")
        verbose_name_plural = _("alerts sent")
        ordering = ["-alert__created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return f"{self.alert_id} → {self.channel_id}: {self.status}"

    @property
    def error_text(self):
        return facts_text(self.error)
