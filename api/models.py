from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Account


class ApiClient(models.Model):
    """A program allowed to read the tokens of some accounts over the API, with its own key.

    The key is shown once, at creation; only its lookup prefix and its SHA-256 are kept.
    """

    name = models.CharField(_("name"), max_length=200, unique=True)
    accounts = models.ManyToManyField(
        Account, blank=True, related_name="api_clients", verbose_name=_("accounts"),
        help_text=_("The accounts whose tokens this client may read."),
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Untick, or use the Revoke action, to refuse its key from now on.")
    )
    key_prefix = models.CharField(_("key prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    comments = models.TextField(_("comments"), blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    revoked_by = models.CharField(_("revoked by"), max_length=150, blank=True, editable=False)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def actor(self):
        """How token events name this client."""
        return f"api:{self.name}"[:150]


class KeyFailures(models.Model):
    """Wrong API keys from one address in the current window (api/throttle.py). Written only on failures."""

    address = models.CharField(max_length=64, unique=True)
    window_start = models.DateTimeField(db_index=True)
    failures = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.address}: {self.failures} since {self.window_start:%H:%M:%S}"
