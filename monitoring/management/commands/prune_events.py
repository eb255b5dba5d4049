from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from monitoring.retention import BATCH, prune


class Command(BaseCommand):
    help = _(
        "Delete token events, refresh runs and alerts older than DAYS (default: OAUTHMAIL_EVENT_RETENTION_DAYS), "
        "in batches. The newest event of each kind for each account is always kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, metavar="DAYS", dest="days",
                            help=_("delete what is older than this many days"))
        parser.add_argument("--batch-size", type=int, default=BATCH, metavar="N",
                            help=_("rows deleted per transaction (default %(default)s)"))

    def handle(self, *args, days, batch_size, **options):
        days = settings.OAUTHMAIL_EVENT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError(_("--older-than must be 1 day or more."))
        if batch_size < 1:
            raise CommandError(_("--batch-size must be 1 or more."))
        progress = self._progress if options["verbosity"] > 1 else None
        counts = prune(older_than_days=days, batch_size=batch_size, progress=progress)
        self.stdout.write(ngettext(
            "Deleted, older than %(days)d day: token events %(events)d, refresh runs %(runs)d, alerts %(alerts)d.",
            "Deleted, older than %(days)d days: token events %(events)d, refresh runs %(runs)d, alerts %(alerts)d.",
            days,
        ) % {**counts, "days": days})

    def _progress(self, model, deleted):
        self.stderr.write(_("%(what)s: %(count)d deleted so far") % {
            "what": model._meta.verbose_name_plural, "count": deleted})
