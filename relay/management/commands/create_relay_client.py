from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from accounts.management.commands._common import cli_actor, get_account
from relay import services


class Command(BaseCommand):
    help = _(
        "Create a relay client: a user and a password for a device that sends through the SMTP relay as the given "
        "account. The password is printed once (on standard output, alone, for scripts)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help=_("the client's name, e.g. the device: “Scanner 2nd floor”"))
        parser.add_argument("--account", required=True, metavar="IDENT", help=_("the account it sends as"))
        parser.add_argument(
            "--network", dest="networks", action="append", default=[], metavar="CIDR",
            help=_("a network it may connect from, e.g. 192.168.10.0/24 (repeat for several; none: any address)"),
        )
        parser.add_argument("--username", default="", help=_("its SMTP user (default: made from the name)"))
        parser.add_argument("--hourly-limit", type=int, default=None, metavar="N",
                            help=_("at most N messages an hour"))

    def handle(self, *args, name, account, networks, username, hourly_limit, **options):
        account = get_account(account)
        if hourly_limit is not None and hourly_limit < 1:
            raise CommandError(_("--hourly-limit must be 1 or more."))
        try:
            client, password = services.relay_client_create(
                name=name, account=account, username=username, networks="\n".join(networks),
                hourly_limit=hourly_limit, actor=cli_actor(),
            )
        except ValidationError as error:
            problems = [message for messages in error.message_dict.values() for message in messages]
            raise CommandError(" ".join(problems)) from None
        self.stderr.write(_(
            "Relay client “%(name)s” created: it sends as %(email)s (account %(account)s). SMTP user: %(username)s. "
            "Its password, shown only this once:"
        ) % {"name": client.name, "email": account.email, "account": account.identifier, "username": client.username})
        self.stdout.write(password)
