"""The Init. Token pages of the account admin. Thin: the rules are in accounts/services.py."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from . import services
from .models import Account, InitRequest


def actor_name(request):
    return request.user.get_username()


def message_user_for(request, init_request):
    """The message shown once Init. Token has finished, whichever page noticed."""
    account = init_request.account
    if init_request.status == InitRequest.Status.SUCCEEDED:
        messages.success(request, _("The token of %(account)s is initialised.") % {"account": account.identifier})
    else:
        messages.error(
            request,
            _("Init. Token failed for %(account)s: %(error)s")
            % {"account": account.identifier, "error": init_request.error},
        )


def _check(model_admin, request, *, post=False):
    if not model_admin.has_init_token_permission(request):
        raise PermissionDenied
    if post and request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return None


def start(model_admin, request, accounts):
    """Start Init. Token for each account; app-only ones finish at once, device codes get a page."""
    from .views import redirect_uri, remember_state

    _check(model_admin, request)
    browser = [a for a in accounts if a.flow == Account.Flow.AUTHORIZATION_CODE]
    if browser and len(accounts) > 1:
        messages.warning(request, _(
            "Browser sign-in is one account at a time: use Init. Token on the page of %(accounts)s."
        ) % {"accounts": ", ".join(a.identifier for a in browser)})
        accounts = [a for a in accounts if a not in browser]
    pending = []
    for account in accounts:
        init_request = services.account_init_start(
            account=account, actor=actor_name(request), redirect_uri=redirect_uri(request)
        )
        if init_request.status == InitRequest.Status.PENDING and init_request.oauth_state:
            remember_state(request, init_request.oauth_state)
            return redirect(init_request.verification_uri)
        if init_request.status == InitRequest.Status.PENDING:
            pending.append(init_request)
        else:
            message_user_for(request, init_request)
    if not pending:
        return None
    url = reverse("admin:accounts_account_init_page", args=[pending[0].pk])
    return redirect(url + "?" + "&".join(f"also={r.pk}" for r in pending[1:]))


def start_one(model_admin, request, object_id):
    if refused := _check(model_admin, request, post=True):
        return refused
    account = get_object_or_404(Account.objects.select_related("application"), pk=object_id)
    response = start(model_admin, request, [account])
    return response or redirect(reverse("admin:accounts_account_change", args=[account.pk]))


def _visible_request(model_admin, request, request_id):
    _check(model_admin, request)
    return get_object_or_404(InitRequest.objects.select_related("account"), pk=request_id)


def init_page(model_admin, request, request_id):
    """Shows the verification URL, the user code and the time left; the page polls init_status."""
    first = _visible_request(model_admin, request, request_id)
    others = InitRequest.objects.filter(pk__in=[int(pk) for pk in request.GET.getlist("also") if pk.isdigit()])
    init_requests = [first, *others.select_related("account")]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Init. Token"),
        "init_requests": [(r, reverse("admin:accounts_account_init_status", args=[r.pk]),
                           reverse("admin:accounts_account_init_token", args=[r.account_id])) for r in init_requests],
        "done_url": (
            reverse("admin:accounts_account_change", args=[first.account_id]) if len(init_requests) == 1
            else reverse("admin:accounts_account_changelist")
        ),
    }
    return TemplateResponse(request, "admin/accounts/account/init_token.html", context)


def init_status(model_admin, request, request_id):
    """One poll: at most one token request to the provider, and only once the interval has passed."""
    if refused := _check(model_admin, request, post=True):
        return refused
    init_request = _visible_request(model_admin, request, request_id)
    was_pending = init_request.status == InitRequest.Status.PENDING
    init_request = services.account_init_poll(request_id=init_request.pk, actor=actor_name(request))
    if was_pending and init_request.status != InitRequest.Status.PENDING:
        message_user_for(request, init_request)
    return JsonResponse({
        "status": init_request.status,
        "status_display": init_request.get_status_display(),
        "seconds_left": init_request.seconds_left,
        "error": init_request.error,
        "account_url": reverse("admin:accounts_account_change", args=[init_request.account_id]),
    })
