from django.contrib import admin
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters

from oauthmail.times import local

from .forms import ApplicationForm
from .models import Application

WHO_WHEN = (_("Who, when"), {"fields": ["created_when", "created_by", "updated_when", "updated_by"]})


class AuditedAdmin(admin.ModelAdmin):
    """Stamps who created and changed a record, and shows it read-only."""

    audit_fields = ["created_when", "created_by", "updated_when", "updated_by"]

    def save_model(self, request, obj, form, change):
        obj.stamp(request.user)
        super().save_model(request, obj, form, change)

    def get_readonly_fields(self, request, obj=None):
        fields = [*super().get_readonly_fields(request, obj), *self.audit_fields]
        if obj is not None:
            fields.append("identifier")  # entered at creation only
        return fields

    @admin.display(description=_("created at"))
    def created_when(self, obj):
        return local(obj.created_at) if obj and obj.created_at else "-"

    @admin.display(description=_("updated at"))
    def updated_when(self, obj):
        return local(obj.updated_at) if obj and obj.updated_at else "-"


@admin.register(Application)
class ApplicationAdmin(AuditedAdmin):
    form = ApplicationForm
    list_display = ["identifier", "name", "provider", "tenant", "client_id", "secret_status", "account_count"]
    list_filter = ["provider"]
    search_fields = ["identifier", "name", "client_id", "tenant"]
    readonly_fields = ["secret_status", "scopes_used", "certificate_status", "service_account_email"]
    change_form_template = "admin/providers/application/change_form.html"

    def get_fieldsets(self, request, obj=None):
        can_change = self.has_change_permission(request, obj)
        secret, certificate, service_account = ["secret_status"], ["certificate_status"], ["service_account_email"]
        if can_change:
            secret += ["new_client_secret"] + (["clear_client_secret"] if obj and obj.has_client_secret else [])
            certificate += ["certificate_file", "certificate_key_file", "certificate_passphrase"]
            certificate += ["clear_certificate"] if obj and obj.has_certificate else []
            service_account += ["service_account_file"]
            service_account += ["clear_service_account"] if obj and obj.service_account_email else []
        return [
            (None, {"fields": ["identifier", "name", "provider", "tenant", "client_id", "authority_url"]}),
            (_("Client secret"), {"fields": [*secret, "client_secret_expires_on"]}),
            (_("Certificate (Microsoft, app-only)"), {"classes": ["collapse"], "fields": certificate}),
            (_("Service account (Google, app-only)"), {"classes": ["collapse"], "fields": service_account}),
            (_("Scopes"), {"fields": ["scopes_used", "google_testing"]}),
            (_("Advanced"), {"classes": ["collapse"], "fields": ["scopes"]}),
            (None, {"fields": ["comments"]}),
            WHO_WHEN,
        ]

    @method_decorator(sensitive_post_parameters("new_client_secret", "certificate_passphrase"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        from accounts.views import redirect_uri

        extra_context = {**(extra_context or {}), "redirect_uri": redirect_uri(request)}
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
            return format_html('<strong class="oauthmail-alert">{}</strong>', _("set, EXPIRED"))
        text = ngettext("set, expires in %(days)d day", "set, expires in %(days)d days", days) % {"days": days}
        return format_html('<strong class="oauthmail-alert">{}</strong>', text) if days <= 30 else text

    @admin.display(description=_("certificate"))
    def certificate_status(self, obj):
        if obj is None or not obj.has_certificate:
            return _("not set")
        days = (obj.certificate_expires_at - timezone.now()).days
        return format_html(
            "{}: <code>{}</code><br>{}", _("thumbprint"), obj.certificate_thumbprint,
            ngettext("expires in %(days)d day", "expires in %(days)d days", days) % {"days": days}
            if days >= 0 else _("EXPIRED"),
        )

    @admin.display(description=_("scopes used"))
    def scopes_used(self, obj):
        if obj is None or not obj.provider:
            return _("Filled in from the provider once the application is saved.")
        return format_html(
            "{}: {}<br>{}: {}",
            _("Delegated (device code)"), " ".join(obj.delegated_scopes()),
            _("App-only (client credentials)"), " ".join(obj.app_only_scopes()),
        )
