import json
import signal
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django.utils.translation import gettext as _

from accounts import services
from alerts.services import send_alerts_quietly

from ._progress import ProgressBar


class Command(BaseCommand):
    help = _(
        "For cron: refresh every active account whose access token expires soon, and every refresh "
        "token unused for 7 days. Exit status 1 when any account failed. With --loop, for hosts "
        "without cron: refresh every minute until stopped (SIGTERM or Ctrl-C)."
    )

    def add_arguments(self, parser):
        parser.add_argument("identifiers", nargs="*", metavar="IDENT", help=_("only these accounts (due or not)"))
        parser.add_argument(
            "--within", type=int, default=15, metavar="MINUTES",
            help=_("refresh access tokens that expire within this many minutes (default 15)"),
        )
        parser.add_argument(
            "--workers", type=int, default=8, metavar="N", help=_("refresh this many accounts at once (default 8)")
        )
        parser.add_argument("--loop", action="store_true", help=_("keep running: refresh again every interval"))
        parser.add_argument(
            "--interval", type=float, default=60, metavar="SECONDS",
            help=_("with --loop: seconds from the start of one run to the next (default 60)"),
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help=_("print a machine-readable report"))

    def handle(self, *args, identifiers, within, workers, loop, interval, as_json, **options):
        if within < 0:
            raise CommandError(_("--within must be zero or more minutes."))
        if workers < 1:
            raise CommandError(_("--workers must be 1 or more."))
        if interval <= 0:
            raise CommandError(_("--interval must be more than zero seconds."))
        stop = threading.Event()
        with _stopped_by_signals(stop):
            while True:
                started = time.monotonic()
                report = self._run_once(identifiers, within, workers, as_json, loop, stop)
                send_alerts_quietly()  # what changed (failing accounts, expiring secrets …), to the alert channels
                if not loop:
                    break
                close_old_connections()  # as after a web request: none is kept open between runs
                if stop.wait(max(0.0, started + interval - time.monotonic())):
                    self.stdout.write(_("Stopped."))
                    return
        if report.failed:
            raise SystemExit(1)

    def _run_once(self, identifiers, within, workers, as_json, loop, stop):
        progress = ProgressBar(self.stdout, label=_("Refreshing")) if self.stdout.isatty() and not as_json else None
        try:
            report = services.refresh_due(
                within=timedelta(minutes=within), identifiers=identifiers, actor="cron", workers=workers,
                progress=progress, stop=stop, details=as_json,
            )
        finally:
            if progress:
                progress.close()
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=None if loop else 2, default=str))
        else:
            for failure in report.failed:
                self.stderr.write(_("%(account)s: %(error)s") % failure)
            self.stdout.write(_("%(refreshed)d refreshed, %(failed)d failed, %(skipped)d skipped (busy elsewhere).")
                              % report.counts)
        self.stdout.flush()
        return report


@contextmanager
def _stopped_by_signals(stop):
    """SIGTERM and SIGINT set `stop`: the accounts being refreshed finish, then the command ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, lambda *_args: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
