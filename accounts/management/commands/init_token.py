import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import services
from accounts.models import InitRequest

from ._common import cli_actor, get_account


class Command(BaseCommand):
    help = _(
        "Initialise an account's token: app-only accounts at once, device code by a sign-in. With "
        "--all-new: every new app-only account (no user needed)."
    )

    def add_arguments(self, parser):
        parser.add_argument("identifier", nargs="?", help=_("the account's identifier"))
        parser.add_argument(
            "--all-new", action="store_true", help=_("initialise every new app-only (client credentials) account")
        )

    def handle(self, *args, identifier, all_new, **options):
        if all_new == bool(identifier):
            raise CommandError(_("Name one account, or use --all-new."))
        if all_new:
            return self.init_all_new()
        account = get_account(identifier)
        actor = cli_actor()
        request = services.account_init_start(account=account, actor=actor)
        if request.status == InitRequest.Status.PENDING:
            self.stdout.write(request.message or _("Open %(url)s and enter the code %(code)s.") % {
                "url": request.verification_uri, "code": request.user_code})
            minutes = request.seconds_left // 60
            self.stdout.write(ngettext("Waiting for the sign-in (%(minutes)d minute left)…",
                                       "Waiting for the sign-in (%(minutes)d minutes left)…", minutes)
                              % {"minutes": minutes})
            self.stdout.flush()
        while request.status == InitRequest.Status.PENDING:
            time.sleep(max(0.2, min(request.interval, request.seconds_left)) if request.next_poll_at else 0)
            request = services.account_init_poll(request_id=request.pk, actor=actor)
        if request.status == InitRequest.Status.FAILED:
            raise CommandError(_("Init. Token failed for %(account)s: %(error)s") % {
                "account": account.identifier, "error": request.error})
        self.stdout.write(self.style.SUCCESS(_("The token of %(account)s is initialised.") % {
            "account": account.identifier}))

    def init_all_new(self):
        done = failed = 0
        for account, request in services.init_all_new(actor=cli_actor()):
            if request.status == InitRequest.Status.SUCCEEDED:
                done += 1
                self.stdout.write(_("%(account)s: initialised.") % {"account": account.identifier})
            else:
                failed += 1
                self.stderr.write(_("%(account)s: failed: %(error)s") % {
                    "account": account.identifier, "error": request.error})
            self.stdout.flush()
        self.stdout.write(_("%(done)d initialised, %(failed)d failed.") % {"done": done, "failed": failed})
        if failed:
            raise SystemExit(1)
