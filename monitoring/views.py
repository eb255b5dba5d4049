"""GET /metrics with Authorization: Bearer <OAUTHMAIL_METRICS_TOKEN>, for Prometheus."""
import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .metrics import exposition


@never_cache
@require_GET
def metrics(request):
    expected = settings.OAUTHMAIL_METRICS_TOKEN
    if not expected:
        raise Http404  # not configured: as if it did not exist
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        response = HttpResponse("A valid token is required: Authorization: Bearer <OAUTHMAIL_METRICS_TOKEN>.\n",
                                status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="oauthmail metrics"'
        return response
    body, content_type = exposition(accept=request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
