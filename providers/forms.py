from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Application


class ApplicationForm(forms.ModelForm):
    """The client secret is write-only: typed in, stored encrypted, never shown again."""

    new_client_secret = forms.CharField(
        label=_("Client secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only: leave blank to keep the current secret. Public clients need none."),
    )
    clear_client_secret = forms.BooleanField(label=_("Remove the client secret"), required=False)

    class Meta:
        model = Application
        fields = [
            "identifier", "name", "provider", "tenant", "client_id", "client_secret_expires_on",
            "authority_url", "scopes", "comments",
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_client_secret") and cleaned.get("clear_client_secret"):
            self.add_error("clear_client_secret", _("Either type a new secret or remove it, not both."))
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        if self.cleaned_data.get("clear_client_secret"):
            self.instance.client_secret = ""
        elif self.cleaned_data.get("new_client_secret"):
            self.instance.client_secret = self.cleaned_data["new_client_secret"]
