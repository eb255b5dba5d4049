from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from oauthmail.crypto import EncryptedTextField
from oauthmail.texts import facts_text, render
from oauthmail.times import local
from oauthmail.validators import validate_identifier, validate_visible_text
from providers.advice import advice_for
from providers.base import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, DEVICE_CODE
from providers.models import Application, Audited


def address_lines(text):
    """E-mail addresses written one per line (commas and blanks also separate them)."""
    return [item for item in text.replace(",", " ").split() if item]


def validate_address_lines(text):
    for address in address_lines(text):
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(
                _("“%(address)s” is not a valid e-mail address."), params={"address": address}, code="invalid"
            ) from None


class Security(models.TextChoices):
    TLS = "tls", _("TLS")
    STARTTLS = "starttls", _("STARTTLS")
    NONE = "none", _("None (local test server only)")


def _port(label):
    return models.PositiveIntegerField(label, null=True, blank=True, help_text=_("Blank for the provider's default."))


def _host(label):
    return models.CharField(label, max_length=255, blank=True, help_text=_("Blank for the provider's default."))


def _security(label):
    return models.CharField(
        label, max_length=10, blank=True, choices=Security.choices, help_text=_("Blank for the provider's default.")
    )


class Account(Audited):
    class Flow(models.TextChoices):
        DEVICE_CODE = DEVICE_CODE, _("Device code (an operator signs in)")
        AUTHORIZATION_CODE = AUTHORIZATION_CODE, _("Browser sign-in (authorization code)")
        CLIENT_CREDENTIALS = CLIENT_CREDENTIALS, _("App-only (client credentials, certificate or service account)")

    class Status(models.TextChoices):
        NEW = "new", _("New")
        ACTIVE = "active", _("Active")
        FAILING = "failing", _("Failing")
        REAUTH_REQUIRED = "reauth_required", _("Re-authorisation required")

    application = models.ForeignKey(
        Application, models.PROTECT, related_name="accounts", verbose_name=_("application")
    )
    identifier = models.CharField(
        _("identifier"), max_length=100, unique=True, validators=[validate_identifier],
        help_text=validate_identifier.help_text,
    )
    name = models.CharField(_("name"), max_length=200, validators=[validate_visible_text])
    email = models.EmailField(_("e-mail address"), max_length=254)
    flow = models.CharField(_("sign-in flow"), max_length=32, choices=Flow.choices, default=Flow.DEVICE_CODE)
    sign_in_user = models.EmailField(
        _("sign-in user"), max_length=254, blank=True,
        help_text=_(
            "Shared mailbox only: the user who signs in for it, when that is not the mailbox's own address."
        ),
    )
    comments = models.TextField(_("comments"), blank=True)
    send_as_addresses = models.TextField(
        _("send-as addresses"), blank=True, validators=[validate_address_lines],
        help_text=_(
            "Other addresses the SMTP relay lets this account send as, one per line. The mailbox must be "
            "allowed to send as them at the provider (Exchange: Send As permission; Gmail: “Send mail as”)."
        ),
    )

    # Mail servers for "Test connection" (blank = the provider's defaults).
    imap_host = _host(_("IMAP host"))
    imap_port = _port(_("IMAP port"))
    imap_security = _security(_("IMAP security"))
    pop_host = _host(_("POP host"))
    pop_port = _port(_("POP port"))
    pop_security = _security(_("POP security"))
    smtp_host = _host(_("SMTP host"))
    smtp_port = _port(_("SMTP port"))
    smtp_security = _security(_("SMTP security"))
    verify_certificate = models.BooleanField(_("verify server certificate"), default=True)
    # Plaintext or unverified TLS sends the token where anyone on the path can read it: allowed only as an
    # administrator set it. `mail_servers_approved` is the settings they saved (accounts/mail_servers.py):
    # any change made otherwise no longer matches, and the approval no longer holds.
    mail_servers_approved = models.TextField(blank=True, editable=False)
    mail_servers_approved_by = models.CharField(_("mail servers approved by"), max_length=150, blank=True,
                                                editable=False)
    mail_servers_approved_at = models.DateTimeField(_("mail servers approved at"), null=True, blank=True,
                                                    editable=False)

    # Token facts, read-only.
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.NEW, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)  # as written, for old rows
    last_error_code = models.CharField(_("last error code"), max_length=100, blank=True, editable=False)
    last_error_params = models.JSONField(default=dict, blank=True, editable=False)  # facts: see oauthmail/texts.py
    token_initialized_at = models.DateTimeField(_("token initialised at"), null=True, blank=True, editable=False)
    token_initialized_by = models.CharField(_("token initialised by"), max_length=150, blank=True, editable=False)
    last_refreshed_at = models.DateTimeField(_("last refreshed at"), null=True, blank=True, editable=False)
    access_token_expires_at = models.DateTimeField(
        _("access token expires at"), null=True, blank=True, editable=False
    )
    refresh_token_expires_at = models.DateTimeField(
        _("refresh token expires at"), null=True, blank=True, editable=False
    )
    refresh_token_expiry_estimated = models.BooleanField(
        _("refresh token expiry is an estimate"), default=False, editable=False
    )
    refresh_token_issued_at = models.DateTimeField(
        _("refresh token issued at"), null=True, blank=True, editable=False
    )
    signed_in_as = models.CharField(_("signed in as"), max_length=254, blank=True, editable=False)

    # Secrets: encrypted, never displayed.
    access_token = EncryptedTextField(_("access token"))
    refresh_token = EncryptedTextField(_("refresh token"))

    # One token operation at a time per account, across processes: see accounts/claims.py.
    claim_id = models.CharField(max_length=36, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["identifier"]
        permissions = [
            ("init_token", _("Can initialise an account's token")),
            ("test_connection", _("Can test an account's mail server connection")),
            ("change_mail_servers", _("Can change an account's mail servers and certificate checking")),
        ]
        indexes = [models.Index(fields=["status", "access_token_expires_at"])]

    def __str__(self):
        return f"{self.identifier} <{self.email}>"

    def clean(self):
        if self.email:
            twin = (Account.objects.filter(email__iexact=self.email).exclude(email=self.email)
                    .exclude(pk=self.pk).only("identifier", "email").first())
            if twin is not None:
                raise ValidationError({"email": _(
                    "The account %(account)s has this mailbox as %(email)s: addresses differing only in case are "
                    "the same mailbox. Spell it the same way, or use that account."
                ) % {"account": twin.identifier, "email": twin.email}})
        app = self.application if self.application_id else None
        if app is None:
            return
        if app.provider == app.Provider.GOOGLE and self.flow == self.Flow.DEVICE_CODE:
            raise ValidationError({"flow": _(
                "Google does not allow the device-code flow for mail (https://mail.google.com/): "
                "choose the browser sign-in, or app-only with a service account."
            )})
        if self.flow == self.Flow.CLIENT_CREDENTIALS and not app.has_app_only_credentials:
            raise ValidationError({"flow": _(
                "App-only access needs credentials on the application: a client secret or a certificate "
                "(Microsoft), a service account key (Google)."
            )})

    @property
    def is_app_only(self):
        return self.flow == self.Flow.CLIENT_CREDENTIALS

    @property
    def sender_addresses(self):
        """The addresses this account may send as: its own, then its send-as addresses."""
        return [self.email, *address_lines(self.send_as_addresses)]

    @property
    def last_error_text(self):
        """The last error in the reader's language (as it was written, for errors stored before codes)."""
        return facts_text(self.last_error_params) if self.last_error_params else self.last_error

    def last_error_advice(self):
        if not (self.last_error_params or self.last_error):
            return None
        return advice_for(
            code=self.last_error_code, text=self.last_error_text,
            google_testing=self.application.provider == "google" and self.application.google_testing,
        )


class TokenEvent(models.Model):
    """What happened to an account's token: who, when, and what, as a code with facts (`params`),
    rendered in the reader's language (oauthmail/texts.py). Never the token.

    `count` and `last_at` let one row stand for several alike events (e.g. 42 reads between `at`
    and `last_at`). Rows written before codes existed have no code: their `outcome` is shown as it is.
    """

    class Kind(models.TextChoices):
        INIT = "init", _("Initialised")
        INIT_STARTED = "init_started", _("Init. Token started")
        REFRESH = "refresh", _("Refreshed")
        FAILURE = "failure", _("Failure")
        REAUTH_REQUIRED = "reauth_required", _("Re-authorisation required")
        READ = "read", _("Token read")
        FALLBACK = "fallback", _("Stored token handed out")
        CONNECTION_TEST = "connection_test", _("Connection test")
        MAIL_SERVERS = "mail_servers", _("Mail servers changed")
        TOKEN_DROPPED = "token_dropped", _("Token dropped")
        DELETED = "deleted", _("Account deleted")
        RELAY_SENT = "relay_sent", _("Relayed")
        RELAY_REFUSED = "relay_refused", _("Relay refused")

    # The audit trail outlives the account: a deleted account's events keep its identifier.
    account = models.ForeignKey(
        Account, models.SET_NULL, null=True, blank=True, related_name="events", verbose_name=_("account")
    )
    account_identifier = models.CharField(_("account"), max_length=100, db_index=True, default="", editable=False)
    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    actor = models.CharField(_("by"), max_length=150)
    kind = models.CharField(_("event"), max_length=20, choices=Kind.choices)
    code = models.CharField(_("code"), max_length=64, blank=True)
    params = models.JSONField(_("facts"), default=dict, blank=True)
    count = models.PositiveIntegerField(_("count"), default=1)
    last_at = models.DateTimeField(_("last at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=1000, blank=True)  # events written before codes

    class Meta:
        verbose_name = _("token event")
        verbose_name_plural = _("token events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["account_identifier", "kind", "id"], name="accounts_event_newest_of_kind")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_kind_display()}"

    @property
    def text(self):
        """What happened, in the active language."""
        text = render(self.code, self.params) if self.code else self.outcome
        if self.count > 1:
            text = " ".join(filter(None, [text, _("(%(count)d times, the last at %(last_at)s)") % {
                "count": self.count, "last_at": local(self.last_at or self.at)}]))
        return text


class RefreshRun(models.Model):
    """One run of refresh_tokens (or of refresh_due): when, how long, and what it did."""

    started_at = models.DateTimeField(_("started at"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, db_index=True)
    duration = models.FloatField(_("duration (seconds)"), null=True, blank=True)
    refreshed = models.PositiveIntegerField(_("refreshed"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    partial = models.BooleanField(_("named accounts only"), default=False)
    actor = models.CharField(_("by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("refresh run")
        verbose_name_plural = _("refresh runs")
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.refreshed}/{self.failed}/{self.skipped}"


class Counter(models.Model):
    """A total that only grows (refreshes by outcome ...), for Prometheus counters that outlive pruning
    and are the same in every process: `counter_add()` in accounts/services/runs.py."""

    name = models.CharField(max_length=100, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self):
        return f"{self.name}={self.value}"


class InitRequest(models.Model):
    """An Init. Token in progress, kept in the database so any server process can poll it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for sign-in")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    account = models.ForeignKey(Account, models.CASCADE, related_name="init_requests")
    flow = models.CharField(max_length=32)
    started_by = models.CharField(max_length=150)
    started_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    user_code = models.CharField(max_length=64, blank=True)
    verification_uri = models.TextField(blank=True)  # a sign-in URL with PKCE and state runs long
    message = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    interval = models.PositiveIntegerField(default=5)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    state = EncryptedTextField()  # the provider's flow state (device code, PKCE verifier): a secret
    oauth_state = models.CharField(max_length=64, blank=True, db_index=True)  # browser sign-in: single-use
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.account_id} {self.flow} {self.status}"

    @property
    def seconds_left(self):
        if not self.expires_at or self.status != self.Status.PENDING:
            return 0
        return max(0, int((self.expires_at - timezone.now()).total_seconds()))
