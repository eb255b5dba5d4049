"""The one OAuth callback of the whole site: /oauth/callback/."""
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from . import services
from .admin_views import actor_name, message_user_for

SESSION_STATES = "oauthmail_oauth_states"


def redirect_uri(request):
    """The exact redirect URI to register in Entra ID / Google Cloud."""
    path = reverse("oauth_callback")
    base = settings.OAUTHMAIL_BASE_URL
    return f"{base.rstrip('/')}{path}" if base else request.build_absolute_uri(path)


def remember_state(request, oauth_state):
    """Bind a browser sign-in to this operator's session: only this session may finish it."""
    request.session[SESSION_STATES] = [*request.session.get(SESSION_STATES, [])[-9:], oauth_state]


def _oauth_callback(request):
    if not request.user.has_perm("accounts.init_token"):
        raise PermissionDenied
    oauth_state = request.GET.get("state", "")
    states = request.session.get(SESSION_STATES, [])
    init_request = None
    if oauth_state and oauth_state in states:
        request.session[SESSION_STATES] = [s for s in states if s != oauth_state]
        init_request = services.account_init_callback(
            oauth_state=oauth_state, response=request.GET.dict(), actor=actor_name(request)
        )
    if init_request is None:
        messages.error(request, _(
            "This sign-in answer does not match an Init. Token started in this browser session, or it was "
            "already used: nothing was stored. Start Init. Token again from the account page."
        ))
        return redirect(reverse("admin:accounts_account_changelist"))
    message_user_for(request, init_request)
    return redirect(reverse("admin:accounts_account_change", args=[init_request.account_id]))


def oauth_callback(request):
    return admin.site.admin_view(_oauth_callback)(request)
