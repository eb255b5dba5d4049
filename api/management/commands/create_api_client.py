from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from accounts.management.commands._common import cli_actor
from accounts.models import Account
from api import services
from api.models import ApiClient


class Command(BaseCommand):
    help = _(
        "Create an API client allowed to read the tokens of the given accounts, and print its key once "
        "(on standard output, alone, for scripts)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help=_("the client's name, e.g. the program that will use the key"))
        parser.add_argument(
            "--account", dest="accounts", action="append", required=True, metavar="IDENT",
            help=_("an account it may read (repeat for several)"),
        )

    def handle(self, *args, name, accounts, **options):
        found = list(Account.objects.filter(identifier__in=accounts))
        missing = sorted(set(accounts) - {account.identifier for account in found})
        if missing:
            raise CommandError(_("No account with identifier: %(identifiers)s.") % {"identifiers": ", ".join(missing)})
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(_("An API client named “%(name)s” already exists.") % {"name": name})
        client, key = services.api_client_create(name=name, accounts=found, actor=cli_actor())
        self.stderr.write(_("API client “%(name)s” created for %(accounts)s. Its key, shown only this once:") % {
            "name": client.name, "accounts": ", ".join(sorted(accounts)),
        })
        self.stdout.write(key)
