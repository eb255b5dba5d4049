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
from oauthmail import deadlines

from ._progress import ProgressBar

CRON_AHEAD = timedelta(minutes=5)  # cron runs every 5 minutes: refresh before consumers' minimum validity


class Command(BaseCommand):
    help = _(
        "For cron: refresh every active account whose access token expires soon, and every refresh "
        "token unused for 7 days. Exit status 1 when any account failed. With --loop, for hosts "
        "without cron: refresh every minute until stopped (SIGTERM or Ctrl-C)."
    )

    def add_arguments(self, parser):
        parser.add_argument("identifiers", nargs="*", metavar="IDENT", help=_("only these accounts (due or not)"))
        parser.add_argument(
            "--within", type=float, default=None, metavar="MINUTES",
            help=_("refresh access tokens that expire within this many minutes (default: "
                   "OAUTHMAIL_MIN_TOKEN_VALIDITY + 5, so that cron refreshes before consumers must)"),
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
        min_validity = services.min_token_validity()
        if within is None:
            within = min_validity + CRON_AHEAD
        elif within < 0:
            raise CommandError(_("--within must be zero or more minutes."))
        else:
            within = timedelta(minutes=within)
            if within <= min_validity:
                self.stderr.write(_(
                    "Warning: --within is not more than OAUTHMAIL_MIN_TOKEN_VALIDITY (%(minutes)g minutes): "
                    "consumers will refresh tokens before this command does."
                ) % {"minutes": min_validity.total_seconds() / 60})
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
                    break
        if stop.is_set():  # on standard error: standard output may be JSON
            self.stderr.write(_("Stopped: accounts not started yet are left for the next run."))
            if loop:
                return
        if report.failed:
            raise SystemExit(1)

    def _run_once(self, identifiers, within, workers, as_json, loop, stop):
        progress = ProgressBar(self.stdout, label=_("Refreshing")) if self.stdout.isatty() and not as_json else None
        try:
            report = services.refresh_due(
                within=within, identifiers=identifiers, actor="cron", workers=workers,
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
    """The first SIGTERM or SIGINT sets `stop`: no account is started any more (nor a refresh retried);
    those whose request is in flight finish (their answers are stored), the others are given back.
    A second one also cuts off the requests still waiting for an answer (deadlines.cancel_all): their
    accounts are recorded as failed, an answer already received is still stored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(*_args):
        if stop.is_set():  # again: no locks are taken in a signal handler, so cancel from another thread
            threading.Thread(target=deadlines.cancel_all, daemon=True).start()
        stop.set()

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
