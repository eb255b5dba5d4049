from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from accounts import services

from ._common import cli_actor, get_account


class Command(BaseCommand):
    help = _(
        "Print a valid access token for an account (refreshed first when it expires within "
        "OAUTHMAIL_MIN_TOKEN_VALIDITY minutes), for msmtp passwordeval, mbsync PassCmd and the like."
    )

    def add_arguments(self, parser):
        parser.add_argument("identifier", help=_("the account's identifier"))
        parser.add_argument(
            "--xoauth2", action="store_true", help=_("print the base64 SASL XOAUTH2 string instead")
        )

    def handle(self, *args, identifier, xoauth2, **options):
        account = get_account(identifier)
        try:
            token, expires_at = services.token_get(account=account, actor=cli_actor())
        except services.TokenUnavailable as error:
            raise CommandError(str(error)) from None
        if warning := services.failing_warning(account=account, expires_at=expires_at):
            self.stderr.write(warning)  # the token still goes to standard output: it works
        if xoauth2:
            token = services.xoauth2_string(email=account.email, token=token)
        self.stdout.write(token)
