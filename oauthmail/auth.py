"""Admin sign-in throttled against password guessing, with django-axes (settings: AXES_*).

LoginThrottleBackend is axes' own backend, except that a sign-in with no request (a test's
client.login(), a shell) is not throttled: there is no client address to count it against, and
Django's admin always passes its request. `locked_out` is the page a locked-out user gets: the
admin's login page with a plain, translated message.
"""
from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_username, get_cool_off
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


class LoginThrottleBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def locked_out(request, original_response=None, credentials=None):
    cool_off = get_cool_off(request)
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else 0
    message = ngettext(
        "Too many failed sign-ins for this user from your address: sign-in is locked for %(minutes)d minute "
        "(each new try starts the wait again). An administrator can unlock it sooner.",
        "Too many failed sign-ins for this user from your address: sign-in is locked for %(minutes)d minutes "
        "(each new try starts the wait again). An administrator can unlock it sooner.", minutes,
    ) % {"minutes": minutes}
    context = {
        **admin.site.each_context(request),
        "title": _("Log in"),
        "app_path": request.get_full_path(),
        "form": AdminAuthenticationForm(request, initial={"username": get_client_username(request, credentials)}),
        "locked_out_message": message,
    }
    return render(request, "admin/login_locked_out.html", context, status=429)  # rendered: axes' middleware runs last
