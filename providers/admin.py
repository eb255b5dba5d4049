from django.contrib import admin
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters

from .forms import ApplicationForm
from .models import Application

WHO_WHEN = (_("Who, when"), {"fields": ["created_at", "created_by", "updated_at", "updated_by"]})


class AuditedAdmin(admin.ModelAdmin):
    """Stamps who created and changed a record, and shows it read-only."""

    audit_fields = ["created_at", "created_by", "updated_at", "updated_by"]

    def save_model(self, request, obj, form, change):
        obj.stamp(request.user)
        super().save_model(request, obj, form, change)

    def get_readonly_fields(self, request, obj=None):
        fields = [*super().get_readonly_fields(request, obj), *self.audit_fields]
        if obj is not None:
            fields.append("identifier")  # entered at creation only
        return fields


@admin.register(Application)
class ApplicationAdmin(AuditedAdmin):
    form = ApplicationForm
    list_display = ["identifier", "name", "provider", "tenant", "client_id", "secret_status", "account_count"]
    list_filter = ["provider"]
    search_fields = ["identifier", "name", "client_id", "tenant"]
    readonly_fields = ["secret_status", "scopes_used"]

    def get_fieldsets(self, request, obj=None):
        secret = ["secret_status"]
        if self.has_change_permission(request, obj):
            secret += ["new_client_secret"] + (["clear_client_secret"] if obj and obj.has_client_secret else [])
        return [
            (None, {"fields": ["identifier", "name", "provider", "tenant", "client_id", "authority_url"]}),
            (_("Client secret"), {"fields": [*secret, "client_secret_expires_on"]}),
            (_("Scopes"), {"fields": ["scopes_used"]}),
            (_("Advanced"), {"classes": ["collapse"], "fields": ["scopes"]}),
            (None, {"fields": ["comments"]}),
            WHO_WHEN,
        ]

    @method_decorator(sensitive_post_parameters("new_client_secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(num_accounts=Count("accounts"))

    @admin.display(description=_("accounts"), ordering="num_accounts")
    def account_count(self, obj):
        return obj.num_accounts

    @admin.display(description=_("client secret"))
    def secret_status(self, obj):
        if obj is None or not obj.has_client_secret:
            return _("not set")
        days = obj.secret_days_left()
        if days is None:
            return _("set (expiry date unknown)")
        if days < 0:
            return format_html('<strong style="color:#ba2121">{}</strong>', _("set, EXPIRED"))
        text = ngettext("set, expires in %(days)d day", "set, expires in %(days)d days", days) % {"days": days}
        return format_html('<strong style="color:#ba2121">{}</strong>', text) if days <= 30 else text

    @admin.display(description=_("scopes used"))
    def scopes_used(self, obj):
        if obj is None or not obj.provider:
            return _("Filled in from the provider once the application is saved.")
        return format_html(
            "{}: {}<br>{}: {}",
            _("Delegated (device code)"), " ".join(obj.delegated_scopes()),
            _("App-only (client credentials)"), " ".join(obj.app_only_scopes()),
        )
