import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import services

from ._common import cli_actor

OUTCOMES = {
    "created": lambda: _("created"),
    "updated": lambda: _("updated"),
    "unchanged": lambda: _("unchanged"),
}


class Command(BaseCommand):
    help = _(
        "Create or update accounts from a CSV file with the columns application, identifier, name, email, "
        "flow and, optionally, refresh_token (to migrate a mailbox that another tool already signed in). "
        "Every row is checked first: a file with any bad row imports nothing. Importing the same file "
        "again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE.csv", help=_("the CSV file (UTF-8), - for standard input"))

    def handle(self, *args, file, **options):
        try:
            if file == "-":
                report = services.import_accounts(file=sys.stdin, actor=cli_actor())
            else:
                with open(file, encoding="utf-8-sig", newline="") as stream:
                    report = services.import_accounts(file=stream, actor=cli_actor())
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(_("Cannot read %(file)s: %(error)s") % {"file": file, "error": error}) from None
        if not report.ok:
            for line, message in report.errors:
                self.stderr.write(_("line %(line)d: %(message)s") % {"line": line, "message": message})
            count = len(report.errors)
            raise CommandError(ngettext("Nothing was imported: %(count)d problem in %(file)s.",
                                        "Nothing was imported: %(count)d problems in %(file)s.", count)
                               % {"count": count, "file": file})
        for row in report.rows:
            text = _("line %(line)d: %(account)s %(outcome)s") % {
                "line": row["line"], "account": row["account"], "outcome": OUTCOMES[row["outcome"]]()}
            if row["changed"]:
                text += f" ({', '.join(row['changed'])})"
            if row["note"]:
                text += f": {row['note']}"
            self.stdout.write(text)
        self.stdout.write(self.style.SUCCESS(_("%(created)d created, %(updated)d updated, %(unchanged)d unchanged.") % {
            name: report.count(name) for name in OUTCOMES}))
