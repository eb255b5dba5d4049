"""The token API: plain Django views answering JSON. Thin: the rules are in api/services.py."""
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from oauthmail.client_ip import client_ip

from . import services
from .metrics import count_answer


def _error(error):
    count_answer(status=error.status, code=error.code)
    response = JsonResponse({"error": error.code, "message": str(error)}, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _bearer(request):
    scheme, _sep, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


@csrf_exempt  # it takes no cookie, only its own Authorization header: a POST gets the JSON 405 below
@never_cache
@sensitive_variables("key", "answer")
def account_token(request, identifier):
    """GET /api/v1/accounts/<identifier>/token with Authorization: Bearer <key>."""
    if request.method != "GET":
        count_answer(status=405, code="method_not_allowed")
        response = JsonResponse({"error": "method_not_allowed", "message": _("Use GET.")}, status=405)
        response["Allow"] = "GET"
        return response
    try:
        client = services.api_client_authenticate(key=_bearer(request), address=client_ip(request))
        answer = services.api_token_read(client=client, identifier=identifier)
    except services.ApiError as error:
        return _error(error)
    count_answer(status=200, code="ok")
    return JsonResponse(answer)
