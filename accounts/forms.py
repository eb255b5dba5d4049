"""The account form of the admin: one extra, unbound choice, approving insecure mail-server settings."""
from django import forms
from django.utils.translation import gettext_lazy as _

from .mail_servers import MAIL_SERVER_FIELDS
from .models import Account


class AccountForm(forms.ModelForm):
    approve_mail_servers = forms.BooleanField(
        label=_("Approve these mail servers"), required=False,
        help_text=_("They send the token in clear text or to an unverified server: tick to confirm that this is "
                    "a server you trust (a local test server). Changing them as an administrator approves them too."),
    )

    class Meta:
        model = Account
        fields = ["application", "identifier", "name", "email", "flow", "sign_in_user", "comments",
                  *MAIL_SERVER_FIELDS]
        help_texts = {
            "email": _("Changing it (or the sign-in user, or the application) once the token is initialised drops "
                       "the token: run Init. Token again."),
        }
