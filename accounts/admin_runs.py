from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from oauthmail.admin_site import ReadOnlyAdmin
from oauthmail.times import local, with_zone

from .models import RefreshRun


@admin.register(RefreshRun)
class RefreshRunAdmin(ReadOnlyAdmin):
    """refresh_tokens' runs, read-only: when, how long, what they did."""

    list_display = ["started", "finished", "duration", "refreshed", "failed", "skipped", "partial", "actor"]
    list_filter = ["partial"]

    @admin.display(description=with_zone(_("started at")), ordering="started_at")
    def started(self, obj):
        return local(obj.started_at, seconds=True, label=False)

    @admin.display(description=with_zone(_("finished at")), ordering="finished_at")
    def finished(self, obj):
        return local(obj.finished_at, seconds=True, label=False) or _("not finished (interrupted?)")
