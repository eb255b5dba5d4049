"""Token events, read-only: every account's, including those of deleted accounts."""
from django.contrib import admin

from .models import TokenEvent


@admin.register(TokenEvent)
class TokenEventAdmin(admin.ModelAdmin):
    list_display = ["at", "account_identifier", "kind", "actor", "outcome"]
    list_filter = ["kind"]
    search_fields = ["account_identifier", "actor", "outcome"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
