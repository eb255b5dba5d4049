from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from oauthmail.crypto import is_set

from .models import Channel


class ChannelForm(forms.ModelForm):
    new_secret = forms.CharField(
        label=gettext_lazy("New signing secret"), required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=gettext_lazy(
            "Webhook: any long random text (e.g. from “openssl rand -hex 32”). Each POST carries "
            "X-Oauthmail-Signature: sha256= followed by the HMAC-SHA256 of the body with this secret, in hexadecimal, "
            "for the receiver to check. "
            "Write-only: it is never shown again; leave blank to keep the current one."
        ),
    )

    class Meta:
        model = Channel
        fields = ["name", "kind", "is_active", "email_to", "url"]

    def clean(self):
        data = super().clean()
        has_secret = self.instance.pk is not None and is_set(self.instance, "secret")
        if data.get("kind") == Channel.Kind.WEBHOOK and not (has_secret or data.get("new_secret")):
            self.add_error("new_secret", _("Enter a signing secret: the receiver checks each alert's signature "
                                           "with it."))
        return data

    def save(self, commit=True):
        if self.cleaned_data.get("new_secret"):
            self.instance.secret = self.cleaned_data["new_secret"]
        return super().save(commit)
