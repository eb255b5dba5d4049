from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import keys
from oauthmail.crypto import DecryptionError


class Command(BaseCommand):
    help = _(
        "Re-encrypt every stored secret with the first key of OAUTHMAIL_ENCRYPTION_KEYS, so older keys "
        "can then be removed."
    )

    def handle(self, *args, **options):
        try:
            counts = keys.rotate_all()
        except DecryptionError as error:
            raise CommandError(str(error)) from None
        for label, count in counts.items():
            self.stdout.write(ngettext("%(model)s: %(count)d secret re-encrypted.",
                                       "%(model)s: %(count)d secrets re-encrypted.", count)
                              % {"model": label, "count": count})
        self.stdout.write(self.style.SUCCESS(_("Every secret is now encrypted with the first key.")))
