from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from oauthmail.crypto import EncryptedTextField, is_set
from oauthmail.validators import validate_guid, validate_identifier, validate_microsoft_tenant, validate_visible_text

from .base import CLIENT_CREDENTIALS


class Audited(models.Model):
    """The read-only "Who, when" facts of a record."""

    created_at = models.DateTimeField(gettext_lazy("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, editable=False,
        related_name="+", verbose_name=gettext_lazy("created by"),
    )
    updated_at = models.DateTimeField(gettext_lazy("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, editable=False,
        related_name="+", verbose_name=gettext_lazy("updated by"),
    )

    class Meta:
        abstract = True

    def stamp(self, user):
        """Record who creates or changes this record (called by the admin before saving)."""
        if self._state.adding:
            self.created_by = user
        self.updated_by = user


def validate_https_url(value):
    URLValidator(schemes=["https"], message=_("Enter an https:// address."))(value)


class Application(Audited):
    class Provider(models.TextChoices):
        MICROSOFT = "microsoft", gettext_lazy("Microsoft Entra ID")
        GOOGLE = "google", gettext_lazy("Google")

    identifier = models.CharField(
        gettext_lazy("identifier"), max_length=100, unique=True, validators=[validate_identifier],
        help_text=validate_identifier.help_text,
    )
    name = models.CharField(gettext_lazy("name"), max_length=200, validators=[validate_visible_text])
    provider = models.CharField(
        gettext_lazy("provider"), max_length=20, choices=Provider.choices, default=Provider.MICROSOFT
    )
    tenant = models.CharField(
        gettext_lazy("tenant"), max_length=255, blank=True,
        help_text=gettext_lazy(
            "Microsoft: the directory (tenant) ID, a domain such as contoso.onmicrosoft.com, or common, "
            "organizations or consumers. Not used by Google."
        ),
    )
    client_id = models.CharField(
        gettext_lazy("client ID"), max_length=255,
        help_text=gettext_lazy("Microsoft: the application (client) ID, a GUID. Google: the OAuth client ID."),
    )
    client_secret = EncryptedTextField(gettext_lazy("client secret"))
    client_secret_expires_on = models.DateField(
        gettext_lazy("client secret expires on"), null=True, blank=True,
        help_text=gettext_lazy("A client secret lasts at most 24 months: note its expiry to be warned in time."),
    )
    certificate_key = EncryptedTextField(gettext_lazy("certificate private key"))
    certificate = models.TextField(gettext_lazy("certificate"), blank=True, editable=False)
    certificate_thumbprint = models.CharField(
        gettext_lazy("certificate thumbprint (SHA-1)"), max_length=64, blank=True, editable=False
    )
    certificate_expires_at = models.DateTimeField(
        gettext_lazy("certificate expires at"), null=True, blank=True, editable=False
    )
    service_account_key = EncryptedTextField(gettext_lazy("service account key"))
    service_account_email = models.CharField(
        gettext_lazy("service account"), max_length=254, blank=True, editable=False
    )
    google_testing = models.BooleanField(
        gettext_lazy("Google app in “Testing”"), default=False,
        help_text=gettext_lazy(
            "Google: the OAuth consent screen's publishing status is “Testing”. Its refresh tokens expire "
            "after 7 days."
        ),
    )
    authority_url = models.CharField(
        gettext_lazy("authority URL"), max_length=500, blank=True, validators=[validate_https_url],
        help_text=gettext_lazy(
            "Blank for the provider's default (https://login.microsoftonline.com, https://accounts.google.com). "
            "Set it for a national cloud, e.g. https://login.microsoftonline.us."
        ),
    )
    scopes = models.TextField(
        gettext_lazy("scopes"), blank=True,
        help_text=gettext_lazy(
            "Advanced: the delegated scopes to request, separated by spaces. Blank for the provider's defaults."
        ),
    )
    comments = models.TextField(gettext_lazy("comments"), blank=True)

    class Meta:
        verbose_name = gettext_lazy("application")
        verbose_name_plural = gettext_lazy("applications")
        ordering = ["identifier"]

    def __str__(self):
        return f"{self.identifier} ({self.name})" if self.name else self.identifier

    def clean(self):
        errors = {}
        if self.provider == self.Provider.MICROSOFT:
            if not self.tenant:
                errors["tenant"] = _("A Microsoft application needs its tenant.")
            else:
                try:
                    validate_microsoft_tenant(self.tenant)
                except ValidationError as exc:
                    errors["tenant"] = exc
            if self.client_id:
                try:
                    validate_guid(self.client_id)
                except ValidationError as exc:
                    errors["client_id"] = exc
        if self.authority_url:
            self.authority_url = self.authority_url.rstrip("/")
        if errors:
            raise ValidationError(errors)

    @property
    def adapter(self):
        from .registry import get_provider

        return get_provider(self.provider)

    @property
    def authority_base(self):
        return (self.authority_url or self.adapter.default_authority).rstrip("/")

    def delegated_scopes(self):
        return self.scopes.split() or self.adapter.default_scopes("delegated")

    def app_only_scopes(self):
        return self.adapter.default_scopes(CLIENT_CREDENTIALS)

    @property
    def has_client_secret(self):
        return is_set(self, "client_secret")

    @property
    def has_certificate(self):
        return is_set(self, "certificate_key")

    @property
    def has_app_only_credentials(self):
        if self.provider == self.Provider.GOOGLE:
            return is_set(self, "service_account_key")
        return self.has_client_secret or self.has_certificate

    def secret_days_left(self):
        if not self.client_secret_expires_on:
            return None
        return (self.client_secret_expires_on - timezone.localdate()).days
