"""The token API: plain Django views answering JSON. Thin: the rules are in api/services.py."""
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from oauthmail.client_ip import client_ip

from . import services
from .metrics import count_answer

# What django.views.decorators.cache.never_cache writes, written directly: on the hot path its parsing
# and date formatting cost a noticeable part of a read.
NO_STORE = {"Cache-Control": "max-age=0, no-cache, no-store, must-revalidate, private",
            "Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}


def _json(data, *, status=200, headers=None):
    return JsonResponse(data, status=status, headers={**NO_STORE, **(headers or {})})


def _error(error):
    count_answer(status=error.status, code=error.code)
    return _json({"error": error.code, "message": str(error)}, status=error.status, headers=error.headers)


def _bearer(request):
    scheme, _sep, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


@csrf_exempt  # it takes no cookie, only its own Authorization header: a POST gets the JSON 405 below
@sensitive_variables("key", "answer")
def account_token(request, identifier):
    """GET /api/v1/accounts/<identifier>/token with Authorization: Bearer <key>."""
    if request.method != "GET":
        count_answer(status=405, code="method_not_allowed")
        return _json({"error": "method_not_allowed", "message": _("Use GET.")}, status=405, headers={"Allow": "GET"})
    try:
        answer = services.api_token_read(key=_bearer(request), identifier=identifier, address=client_ip(request))
    except services.ApiError as error:
        return _error(error)
    count_answer(status=200, code="ok")
    return _json(answer)
