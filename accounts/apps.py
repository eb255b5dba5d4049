from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Mail accounts")

    def ready(self):
        from oauthmail.texts import LABELS

        # Events name an account's settings by field (oauthmail/texts.py): shown by their labels.
        LABELS["field"].update((field.name, field.verbose_name) for field in self.get_model("Account")._meta.fields)
