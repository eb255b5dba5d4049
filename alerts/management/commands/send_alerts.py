from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from alerts.services import send_alerts


class Command(BaseCommand):
    help = _(
        "Notice what changed (accounts failing or to sign in again, secrets and certificates expiring, refresh "
        "tokens near their limit, refresh_tokens overdue), record it, and send it to every active alert channel. "
        "For cron; refresh_tokens also does it after each run. Exit status 1 when a delivery failed."
    )

    def handle(self, *args, **options):
        report = send_alerts()
        for alert in report.alerts:
            self.stdout.write(alert.subject)
        self.stdout.write(_("New alerts: %(alerts)d. Deliveries sent: %(sent)d, failed: %(failed)d.") % {
            "alerts": len(report.alerts), "sent": report.sent, "failed": report.failed})
        if report.failed:
            raise SystemExit(1)
