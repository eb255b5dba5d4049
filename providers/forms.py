from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from .credentials import read_certificate, read_service_account
from .models import Application

MAX_UPLOAD = 64 * 1024


class ApplicationForm(forms.ModelForm):
    """The client secret is write-only: typed in, stored encrypted, never shown again."""

    new_client_secret = forms.CharField(
        label=_("New client secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only: leave blank to keep the current secret. Public clients need none."),
    )
    clear_client_secret = forms.BooleanField(label=_("Remove the client secret"), required=False)
    certificate_file = forms.FileField(
        label=_("Certificate (PEM)"), required=False,
        help_text=_("Microsoft app-only: the certificate registered in Entra ID, with its private key in the same "
                    "PEM file or in the next field. Stored encrypted; only the thumbprint and expiry are shown."),
    )
    certificate_key_file = forms.FileField(label=_("Private key (PEM)"), required=False)
    certificate_passphrase = forms.CharField(
        label=_("Private key passphrase"), required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_certificate = forms.BooleanField(label=_("Remove the certificate"), required=False)
    service_account_file = forms.FileField(
        label=_("Service account key (JSON)"), required=False,
        help_text=_("Google app-only: the JSON key of a service account with domain-wide delegation. "
                    "Stored encrypted."),
    )
    clear_service_account = forms.BooleanField(label=_("Remove the service account key"), required=False)

    class Meta:
        model = Application
        fields = [
            "identifier", "name", "provider", "tenant", "client_id", "client_secret_expires_on",
            "authority_url", "scopes", "google_testing", "comments",
        ]

    def clean_client_secret_expires_on(self):
        expires_on = self.cleaned_data.get("client_secret_expires_on")
        if expires_on and "client_secret_expires_on" in self.changed_data and expires_on < timezone.localdate():
            raise forms.ValidationError(_(
                "This date is in the past: enter the day the secret expires, shown in Entra ID (Certificates & "
                "secrets) or Google Cloud. An expired secret must be replaced first."
            ))
        return expires_on

    @sensitive_variables()
    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_client_secret") and cleaned.get("clear_client_secret"):
            self.add_error("clear_client_secret", _("Either type a new secret or remove it, not both."))
        self._certificate = self._service_account = None
        if cleaned.get("certificate_file"):
            try:
                self._certificate = read_certificate(
                    _read(cleaned["certificate_file"]),
                    _read(cleaned["certificate_key_file"]) if cleaned.get("certificate_key_file") else b"",
                    cleaned.get("certificate_passphrase", ""),
                )
            except forms.ValidationError as error:
                self.add_error("certificate_file", error)
        if cleaned.get("service_account_file"):
            try:
                self._service_account = read_service_account(_read(cleaned["service_account_file"]))
            except forms.ValidationError as error:
                self.add_error("service_account_file", error)
        return cleaned

    @sensitive_variables()
    def _post_clean(self):
        super()._post_clean()
        app, data = self.instance, self.cleaned_data
        if data.get("clear_client_secret"):
            app.client_secret = ""
        elif data.get("new_client_secret"):
            app.client_secret = data["new_client_secret"]
        if data.get("clear_certificate"):
            app.certificate_key = app.certificate = app.certificate_thumbprint = ""
            app.certificate_expires_at = None
        elif getattr(self, "_certificate", None):
            cert = self._certificate
            app.certificate_key, app.certificate = cert.key_pem, cert.certificate_pem
            app.certificate_thumbprint, app.certificate_expires_at = cert.thumbprint, cert.expires_at
        if data.get("clear_service_account"):
            app.service_account_key = app.service_account_email = ""
        elif getattr(self, "_service_account", None):
            app.service_account_key, app.service_account_email = self._service_account


@sensitive_variables()
def _read(upload):
    if upload.size > MAX_UPLOAD:
        raise forms.ValidationError(_("The file is too large for a key or certificate."))
    return upload.read()
