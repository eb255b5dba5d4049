from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import ApiClient


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "key_prefix", "account_list", "last_used_at", "created_at", "created_by"]
    list_filter = ["is_active"]
    search_fields = ["name", "key_prefix", "accounts__identifier"]
    filter_horizontal = ["accounts"]
    actions = ["revoke"]
    readonly_fields = ["key_prefix", "last_used_at", "created_at", "created_by", "revoked_at", "revoked_by"]
    fieldsets = [
        (None, {"fields": ["name", "accounts", "is_active", "comments"]}),
        (_("Key and use"), {"fields": ["key_prefix", "last_used_at", "revoked_at", "revoked_by"]}),
        (_("Who, when"), {"fields": ["created_at", "created_by"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("accounts")

    @admin.display(description=_("accounts"))
    def account_list(self, obj):
        return ", ".join(account.identifier for account in obj.accounts.all())

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # Kept on the request only, to be shown by response_add: never stored, never shown again.
        request._api_key = services.api_client_new_key(client=obj, actor=request.user.get_username())

    def response_add(self, request, obj, post_url_continue=None):
        key = getattr(request, "_api_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("The key of %(name)s") % {"name": obj.name},
            "client": obj,
            "key": key,
        }
        return TemplateResponse(request, "admin/api/apiclient/key.html", context)

    @admin.action(description=_("Revoke the selected API clients' keys"), permissions=["change"])
    def revoke(self, request, queryset):
        clients = list(queryset)
        for client in clients:
            services.api_client_revoke(client=client, actor=request.user.get_username())
        self.message_user(request, ngettext(
            "%(count)d API client revoked: its key is refused from now on.",
            "%(count)d API clients revoked: their keys are refused from now on.", len(clients),
        ) % {"count": len(clients)}, messages.SUCCESS)
