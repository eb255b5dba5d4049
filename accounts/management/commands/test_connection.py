from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from accounts import connection

from ._common import cli_actor, get_account


class Command(BaseCommand):
    help = _(
        "Log in to an account's IMAP, POP and SMTP servers with a fresh token and print each result; "
        "exit status 1 when any check fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("identifier", help=_("the account's identifier"))
        parser.add_argument("--imap", action="store_true", help=_("test IMAP (none of --imap/--pop/--smtp: all)"))
        parser.add_argument("--pop", action="store_true", help=_("test POP"))
        parser.add_argument("--smtp", action="store_true", help=_("test SMTP"))
        parser.add_argument("--send-to", metavar="ADDRESS", help=_("send a short test message to ADDRESS (SMTP)"))
        parser.add_argument(
            "--oauthbearer", action="store_true", help=_("use SASL OAUTHBEARER (RFC 7628) instead of XOAUTH2")
        )

    def handle(self, *args, identifier, imap, pop, smtp, send_to, oauthbearer, **options):
        account = get_account(identifier)
        if not (imap or pop or smtp):
            imap = pop = smtp = True
        if send_to and not smtp:
            raise CommandError(_("--send-to sends by SMTP: add --smtp."))
        report = connection.connection_test(
            account=account, actor=cli_actor(), imap=imap, pop=pop, smtp=smtp, send_to=send_to,
            mechanism="OAUTHBEARER" if oauthbearer else "XOAUTH2",
        )
        for result in report.results:
            stream = self.stdout if result.ok else self.stderr
            stream.write(result.summary())
        if not report.ok:
            raise CommandError(_("The connection test of %(account)s failed.") % {"account": account.identifier})
