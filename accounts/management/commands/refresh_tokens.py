import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from accounts import services


class Command(BaseCommand):
    help = _(
        "For cron: refresh every active account whose access token expires soon, and every refresh "
        "token unused for 7 days. Exit status 1 when any account failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("identifiers", nargs="*", metavar="IDENT", help=_("only these accounts (due or not)"))
        parser.add_argument(
            "--within", type=int, default=15, metavar="MINUTES",
            help=_("refresh access tokens that expire within this many minutes (default 15)"),
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help=_("print a machine-readable report"))

    def handle(self, *args, identifiers, within, as_json, **options):
        if within < 0:
            raise CommandError(_("--within must be zero or more minutes."))
        report = services.refresh_due(within=timedelta(minutes=within), identifiers=identifiers, actor="cron")
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
        else:
            for failure in report.failed:
                self.stderr.write(_("%(account)s: %(error)s") % failure)
            self.stdout.write(_("%(refreshed)d refreshed, %(failed)d failed, %(skipped)d skipped (busy elsewhere).")
                              % report.as_dict()["summary"])
        if report.failed:
            raise SystemExit(1)
