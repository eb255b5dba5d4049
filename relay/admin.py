from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import RelayClient


class RelayClientForm(forms.ModelForm):
    class Meta:
        model = RelayClient
        fields = ["name", "username", "account", "networks", "hourly_limit", "is_active", "comments"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "username" in self.fields:
            self.fields["username"].required = False

    def clean(self):
        cleaned = super().clean()
        if "username" in self.fields and not cleaned.get("username") and cleaned.get("name"):
            cleaned["username"] = self.instance.username = services.username_from_name(cleaned["name"])
        return cleaned


@admin.register(RelayClient)
class RelayClientAdmin(admin.ModelAdmin):
    form = RelayClientForm
    list_display = ["name", "username", "account", "is_active", "network_list", "hourly_limit", "last_used_at",
                    "last_used_from"]
    list_filter = ["is_active"]
    list_select_related = ["account"]
    search_fields = ["name", "username", "account__identifier", "account__email"]
    actions = ["revoke"]
    readonly_fields = ["messages_this_hour", "last_used_at", "last_used_from", "created_at", "created_by",
                       "revoked_at", "revoked_by"]
    fieldsets = [
        (None, {"fields": ["name", "username", "account", "networks", "hourly_limit", "is_active", "comments"]}),
        (_("Use"), {"fields": ["last_used_at", "last_used_from", "messages_this_hour", "revoked_at", "revoked_by"]}),
        (_("Who, when"), {"fields": ["created_at", "created_by"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return [*fields, "username"] if obj is not None else fields  # what the device was given

    @admin.display(description=_("allowed networks"))
    def network_list(self, obj):
        return ", ".join(obj.networks.replace(",", " ").split()) or _("any address")

    @admin.display(description=_("messages this hour"))
    def messages_this_hour(self, obj):
        return services.messages_this_hour(obj)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # Kept on the request only, to be shown by response_add: never stored, never shown again.
        request._relay_password = services.relay_client_new_password(client=obj, actor=request.user.get_username())

    def response_add(self, request, obj, post_url_continue=None):
        password = getattr(request, "_relay_password", None)
        if password is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("The password of %(name)s") % {"name": obj.name},
            "client": obj,
            "password": password,
        }
        return TemplateResponse(request, "admin/relay/relayclient/password.html", context)

    @admin.action(description=_("Revoke the selected relay clients"), permissions=["change"])
    def revoke(self, request, queryset):
        clients = list(queryset)
        for client in clients:
            services.relay_client_revoke(client=client, actor=request.user.get_username())
        self.message_user(request, ngettext(
            "%(count)d relay client revoked: its password is refused from now on.",
            "%(count)d relay clients revoked: their passwords are refused from now on.", len(clients),
        ) % {"count": len(clients)}, messages.SUCCESS)
