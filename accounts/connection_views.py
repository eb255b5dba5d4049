"""The Test connection page and action of the account admin. Thin: the rules are in accounts/connection.py."""
from django import forms
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import connection
from .admin_views import actor_name
from .models import Account


class ConnectionTestForm(forms.Form):
    imap = forms.BooleanField(label=gettext_lazy("IMAP"), required=False, initial=True)
    pop = forms.BooleanField(label=gettext_lazy("POP"), required=False, initial=True)
    smtp = forms.BooleanField(label=gettext_lazy("SMTP"), required=False, initial=True)
    send_to = forms.EmailField(
        label=gettext_lazy("send a test message to"), required=False,
        help_text=gettext_lazy("Optional (SMTP): an address to receive a short test message."),
    )
    mechanism = forms.ChoiceField(
        label=gettext_lazy("mechanism"), choices=[(m, m) for m in connection.MECHANISMS], initial="XOAUTH2",
        help_text=gettext_lazy("OAUTHBEARER is RFC 7628; XOAUTH2 is what Microsoft and Google document."),
    )

    def clean(self):
        data = super().clean()
        if not (data.get("imap") or data.get("pop") or data.get("smtp")):
            raise forms.ValidationError(_("Choose at least one of IMAP, POP and SMTP."))
        if data.get("send_to") and not data.get("smtp"):
            self.add_error("send_to", _("A test message goes out by SMTP: tick SMTP too."))
        return data


def _check(model_admin, request):
    if not model_admin.has_test_connection_permission(request):
        raise PermissionDenied


def _page(model_admin, request, *, reports, form=None, account=None):
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Test connection"),
        "account": account,
        "form": form,
        "reports": reports,
        "back_url": (
            reverse("admin:accounts_account_change", args=[account.pk]) if account
            else reverse("admin:accounts_account_changelist")
        ),
    }
    return TemplateResponse(request, "admin/accounts/account/test_connection.html", context)


def test_one(model_admin, request, object_id):
    """GET: the form. POST: run the test and show the results under the form."""
    _check(model_admin, request)
    account = get_object_or_404(Account.objects.select_related("application"), pk=object_id)
    reports = []
    if request.method == "POST":
        form = ConnectionTestForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            reports.append(connection.connection_test(
                account=account, actor=actor_name(request), imap=data["imap"], pop=data["pop"],
                smtp=data["smtp"], send_to=data["send_to"] or None, mechanism=data["mechanism"],
            ))
    else:
        form = ConnectionTestForm()
    return _page(model_admin, request, reports=reports, form=form, account=account)


def test_many(model_admin, request, accounts):
    """The admin action: every protocol, XOAUTH2, no message sent; the results on one page."""
    _check(model_admin, request)
    reports = [connection.connection_test(account=account, actor=actor_name(request)) for account in accounts]
    return _page(model_admin, request, reports=reports)
