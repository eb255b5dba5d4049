from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from oauthmail.admin_site import ReadOnlyAdmin
from oauthmail.crypto import is_set
from oauthmail.times import local, with_zone

from . import services
from .forms import ChannelForm
from .models import Alert, Channel, Delivery

STATUS_CLASSES = {"sent": "oauthmail-ok", "pending": "oauthmail-warn", "failed": "oauthmail-alert"}


def status_html(delivery):
    css_class = STATUS_CLASSES[delivery.status]
    label = delivery.get_status_display()
    if delivery.status == Delivery.Status.PENDING and delivery.attempts:
        label = gettext("retrying")
    return format_html('<strong class="{}">{}</strong>', css_class, label)


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "is_active", "target"]
    list_filter = ["kind", "is_active"]
    readonly_fields = ["secret_status"]
    change_form_template = "admin/alerts/channel/change_form.html"

    def get_fieldsets(self, request, obj=None):
        webhook = ["url", "secret_status"]
        if self.has_change_permission(request, obj):
            webhook.append("new_secret")
        return [
            (None, {"fields": ["name", "kind", "is_active"]}),
            (_("E-mail"), {"fields": ["email_to"]}),
            (_("Webhook"), {"fields": webhook}),
        ]

    @method_decorator(sensitive_post_parameters("new_secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view(self.test_view)
        return [path("<int:object_id>/test/", view, name="alerts_channel_test"), *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_change_permission(request, obj):
            context["test_url"] = reverse("admin:alerts_channel_test", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def test_view(self, request, object_id):
        """POST: send a test alert to this channel now, and say how it went."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        channel = get_object_or_404(Channel, pk=object_id)
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        delivery = services.send_test_alert(channel=channel, actor=request.user.get_username())
        if delivery.status == Delivery.Status.SENT:
            messages.success(request, gettext("The test alert was sent to %(channel)s.") % {"channel": channel.name})
        else:
            messages.error(request, gettext("The test alert to %(channel)s failed: %(error)s") % {
                "channel": channel.name, "error": delivery.error_text})
        return redirect(reverse("admin:alerts_channel_change", args=[channel.pk]))

    @admin.display(description=_("sent to"))
    def target(self, obj):
        return ", ".join(obj.recipients) if obj.kind == Channel.Kind.EMAIL else obj.url

    @admin.display(description=_("signing secret"))
    def secret_status(self, obj):
        return gettext("set") if obj is not None and is_set(obj, "secret") else gettext("not set")


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["when", "kind", "subject", "deliveries_summary"]
    list_filter = ["kind"]
    date_hierarchy = "created_at"
    fields = ["when", "kind", "subject", "message", "deliveries_summary"]  # the subject says the state in words
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("deliveries__channel")

    @admin.display(description=with_zone(_("at")), ordering="created_at")
    def when(self, obj):
        return local(obj.created_at, label=False)

    @admin.display(description=_("subject"))
    def subject(self, obj):
        return obj.subject

    @admin.display(description=_("message"))
    def message(self, obj):
        return format_html('<div class="alert-message">{}</div>', obj.text)

    @admin.display(description=_("sent to"))
    def deliveries_summary(self, obj):
        deliveries = list(obj.deliveries.all())
        if not deliveries:
            return gettext("no channel")
        return format_html_join(", ", "{}: {}", (
            (delivery.channel.name if delivery.channel else gettext("(deleted channel)"), status_html(delivery))
            for delivery in deliveries
        ))


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["alert_when", "subject", "channel", "status_display", "attempts", "sent_when", "error_text"]
    list_filter = ["status", "channel"]
    list_select_related = ["alert", "channel"]

    @admin.display(description=with_zone(_("alert at")), ordering="alert__created_at")
    def alert_when(self, obj):
        return local(obj.alert.created_at, label=False)

    @admin.display(description=_("alert"))
    def subject(self, obj):
        return obj.alert.subject

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj):
        return status_html(obj)

    @admin.display(description=with_zone(_("sent at")), ordering="sent_at")
    def sent_when(self, obj):
        return local(obj.sent_at, label=False) or "-"

    @admin.display(description=_("last error"))
    def error_text(self, obj):
        return obj.error_text
