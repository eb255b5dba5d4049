from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from oauthmail.times import local, with_zone, zone_name
from providers.admin import WHO_WHEN, AuditedAdmin

from . import admin_views, connection_views, mail_servers, services
from .admin_events import TokenEventAdmin  # noqa: F401 - registers it
from .admin_runs import RefreshRunAdmin  # noqa: F401 - registers it
from .forms import AccountForm
from .models import Account

EVENTS_SHOWN = 50
ERROR_SHOWN = 60  # characters of the last error in the list; the whole of it on the account's page


@admin.register(Account)
class AccountAdmin(AuditedAdmin):
    list_display = ["account", "status_badge", "last_error_short", "access_token_expiry", "application_identifier"]
    list_filter = ["status", "application", "flow"]
    search_fields = ["identifier", "name", "email"]
    list_select_related = ["application"]
    actions = ["init_token", "test_connection"]
    change_form_template = "admin/accounts/account/change_form.html"
    form = AccountForm
    change_list_template = "admin/accounts/account/change_list.html"
    readonly_fields = [
        "mail_servers_status", "status_badge", "last_error_and_advice", "token_initialized_when",
        "token_initialized_by", "last_refreshed_when", "access_token_expiry", "refresh_token_expiry",
        "refresh_token_age", "signed_in_as",
        "relay_messages", "events_table",
    ]
    fieldsets = [
        (None, {"fields": [
            "application", "identifier", "name", "email", "flow", "sign_in_user", "send_as_addresses", "comments",
        ]}),
        (_("Mail servers"), {"classes": ["collapse"], "fields": [  # Test connection, the mail backend
            ("imap_host", "imap_port", "imap_security"), ("pop_host", "pop_port", "pop_security"),
            ("smtp_host", "smtp_port", "smtp_security"), "verify_certificate", "mail_servers_status",
        ]}),
        (_("Token"), {"fields": [
            "status_badge", "last_error_and_advice", "signed_in_as", "token_initialized_when", "token_initialized_by",
            "last_refreshed_when", "access_token_expiry", "refresh_token_expiry", "refresh_token_age",
        ]}),
        (_("Token events"), {"fields": ["relay_messages", "events_table"]}),
        WHO_WHEN,
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("access_token", "refresh_token")

    def get_list_display(self, request):
        if self.has_init_token_permission(request):
            return [*self.list_display, "init_token_button"]
        return self.list_display

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_init_token": self.has_init_token_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.fieldsets[:1]
        if self._may_change_mail_servers(request) and mail_servers.is_insecure(obj) \
                and not mail_servers.is_approved(obj):
            name, options = self.fieldsets[1]
            return [self.fieldsets[0], (name, {**options, "fields": [*options["fields"], "approve_mail_servers"]}),
                    *self.fieldsets[2:]]
        return self.fieldsets

    # --- Mail servers: only with accounts.change_mail_servers (accounts/services/accounts.py) ---
    def _may_change_mail_servers(self, request):
        return request.user.has_perm(mail_servers.PERMISSION)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if not self._may_change_mail_servers(request):
            fields = [*fields, *mail_servers.MAIL_SERVER_FIELDS]
        # Who a device may send as is the relay administrators' decision (SMTP relay, relay/).
        if not request.user.has_perm("relay.change_relayclient"):
            fields = [*fields, "send_as_addresses"]
        return fields

    def save_model(self, request, obj, form, change):
        obj.stamp(request.user)
        for text in services.account_save(
            account=obj, actor=request.user.get_username(),
            may_change_mail_servers=self._may_change_mail_servers(request),
            approve_mail_servers=form.cleaned_data.get("approve_mail_servers", False),
        ):
            self.message_user(request, text, messages.WARNING)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except services.AccountBusy as error:
            self.message_user(request, str(error), messages.ERROR)
            return redirect(request.path)

    def delete_model(self, request, obj):
        services.account_delete(account=obj, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for account in queryset:
            self.delete_model(request, account)

    @admin.display(description=_("approval"))
    def mail_servers_status(self, obj):
        if not mail_servers.is_insecure(obj):
            return _("Not needed: every server uses TLS with certificate checking.")
        if mail_servers.is_approved(obj):
            return _("Insecure settings approved by %(who)s on %(when)s.") % {
                "who": obj.mail_servers_approved_by,
                "when": timezone.localtime(obj.mail_servers_approved_at).strftime("%Y-%m-%d %H:%M")}
        return format_html('<strong class="oauthmail-alert">{}</strong>', _(
            "Not approved by an administrator: Test connection and the mail backend refuse to send the token to "
            "a server without TLS or with certificate checking off."))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:object_id>/init-token/", view(self.init_token_view), name="accounts_account_init_token"),
            path("init-token/<int:request_id>/", view(self.init_page_view), name="accounts_account_init_page"),
            path(
                "init-token/<int:request_id>/status/", view(self.init_status_view),
                name="accounts_account_init_status",
            ),
            path(  # Test connection
                "<int:object_id>/test-connection/", view(self.test_connection_view),
                name="accounts_account_test_connection",
            ),
            *super().get_urls(),
        ]

    def has_init_token_permission(self, request, obj=None):
        return request.user.has_perm("accounts.init_token")

    @admin.action(description=_("Init. Token"), permissions=["init_token"])
    def init_token(self, request, queryset):
        return admin_views.start(self, request, list(queryset.select_related("application")))

    # --- Test connection ---
    def has_test_connection_permission(self, request, obj=None):
        return request.user.has_perm("accounts.test_connection")

    @admin.action(description=_("Test connection"), permissions=["test_connection"])
    def test_connection(self, request, queryset):
        return connection_views.test_many(self, request, list(queryset.select_related("application")))

    def test_connection_view(self, request, object_id):
        return connection_views.test_one(self, request, object_id)

    # --- Init. Token ---
    def init_token_view(self, request, object_id):
        return admin_views.start_one(self, request, object_id)

    def init_page_view(self, request, request_id):
        return admin_views.init_page(self, request, request_id)

    def init_status_view(self, request, request_id):
        return admin_views.init_status(self, request, request_id)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_init_token"] = obj is not None and self.has_init_token_permission(request, obj)
        if obj is not None:
            context["init_token_url"] = reverse("admin:accounts_account_init_token", args=[obj.pk])
            context["can_test_connection"] = self.has_test_connection_permission(request, obj)
            context["test_connection_url"] = reverse("admin:accounts_account_test_connection", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        colours = {"active": "ok", "failing": "warn", "reauth_required": "alert", "new": "muted"}
        return format_html('<strong class="oauthmail-{}">{}</strong>', colours[obj.status], obj.get_status_display())

    @admin.display(description=_("account"), ordering="identifier")
    def account(self, obj):
        return format_html('{}<div class="email" title="{}">{}</div>', obj.identifier, obj.email, obj.email)

    @admin.display(description=_("application"), ordering="application__identifier")
    def application_identifier(self, obj):
        return obj.application.identifier

    @admin.display(description=_("last error"))
    def last_error_short(self, obj):
        text = obj.last_error_text
        if not text:
            return ""
        return format_html('<span class="last-error" title="{}">{}</span>', text, Truncator(text).chars(ERROR_SHOWN))

    @admin.display(description=_("last error"))
    def last_error_and_advice(self, obj):
        text = obj.last_error_text
        if not text:
            return "-"
        advice = obj.last_error_advice()
        return render_to_string("admin/accounts/account/last_error.html", {"error": text, "advice": advice})

    @admin.display(description=with_zone(_("access token expires")), ordering="access_token_expires_at")
    def access_token_expiry(self, obj):
        return local(obj.access_token_expires_at, label=False) or "-"

    @admin.display(description=_("token initialised at"))
    def token_initialized_when(self, obj):
        return local(obj.token_initialized_at) or "-"

    @admin.display(description=_("last refreshed at"))
    def last_refreshed_when(self, obj):
        return local(obj.last_refreshed_at) or "-"

    @admin.display(description=_("Init. Token"))
    def init_token_button(self, obj):
        # A button of the form outside the list (an action form cannot hold another form): Init. Token is a POST.
        url = reverse("admin:accounts_account_init_token", args=[obj.pk])
        return format_html('<button type="submit" form="init-token-form" formaction="{}" class="button init-token">'
                           "{}</button>", url, _("Init. Token"))

    @admin.display(description=_("refresh token expires at"))
    def refresh_token_expiry(self, obj):
        if not obj.refresh_token_expires_at:
            return "-"
        when = local(obj.refresh_token_expires_at)
        if obj.refresh_token_expiry_estimated:
            return format_html("{} <em>({})</em>", when, _("estimate: the provider gives no expiry"))
        return when

    @admin.display(description=_("refresh token age"))
    def refresh_token_age(self, obj):
        if not obj.refresh_token_issued_at:
            return "-"
        days = (timezone.now() - obj.refresh_token_issued_at).days
        age = ngettext("%(days)d day", "%(days)d days", days) % {"days": days}
        if obj.application.provider == "google" and obj.application.google_testing:
            return format_html(
                '{} <strong class="oauthmail-alert">{}</strong>', age,
                _("The Google app is in “Testing”: its refresh tokens expire 7 days after sign-in. Publish the "
                  "app (“In production”) or sign in again every week."),
            )
        return age

    @admin.display(description=_("SMTP relay, last 24 hours"))
    def relay_messages(self, obj):
        from relay.events import RECENT, relay_message_counts

        counts = relay_message_counts(since=timezone.now() - RECENT, accounts=[obj]).get(obj.pk)
        if not counts:
            return _("No message relayed or refused.")
        return _("%(sent)d relayed, %(refused)d refused.") % counts

    @admin.display(description=_("latest events"))
    def events_table(self, obj):
        events = obj.events.all()[:EVENTS_SHOWN]
        return render_to_string("admin/accounts/account/events.html", {"events": events, "zone": zone_name()})
