"""Token events, read-only: every account's, including those of deleted accounts."""
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from oauthmail.admin_site import ReadOnlyAdmin
from oauthmail.times import local, with_zone

from .models import TokenEvent


@admin.register(TokenEvent)
class TokenEventAdmin(ReadOnlyAdmin):
    list_display = ["when", "account_identifier", "kind", "actor", "text"]
    list_filter = ["kind"]
    search_fields = ["account_identifier", "actor", "outcome", "code"]
    date_hierarchy = "at"
    fields = ["when", "account_identifier", "kind", "actor", "text"]
    readonly_fields = fields

    @admin.display(description=with_zone(_("at")), ordering="at")
    def when(self, obj):
        return local(obj.at, seconds=True, label=False)

    @admin.display(description=_("what happened"))
    def text(self, obj):
        return obj.text
