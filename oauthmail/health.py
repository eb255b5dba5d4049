"""``/healthz`` for load balancers and monitoring: is the database there, and migrated?

Answered by a middleware placed first, before anything reads the Host header or the session: a load
balancer may poll by IP address (a host that ALLOWED_HOSTS refuses) and over plain HTTP behind the
TLS proxy, every few seconds. The answer holds nothing secret, sets no cookie and is never cached;
the database error itself goes to the log, not to the caller.
"""
import logging

from django.db import DatabaseError, connection
from django.http import HttpResponseNotAllowed, JsonResponse
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

PATH = "/healthz"


def check_database():
    """None when the database answers and holds oauthmail's tables; otherwise the reason, in plain words
    (in LANGUAGE_CODE: no request language here)."""
    from accounts.models import Account

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.exception("healthz: the database does not answer")
        return _("the database does not answer")
    try:
        list(Account.objects.order_by().values_list("pk", flat=True)[:1])
    except DatabaseError:
        logger.exception("healthz: the database is not migrated")
        return _("the database is not migrated (run manage.py migrate)")
    return None


def healthz(request):
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    problem = check_database()
    if problem:
        response = JsonResponse({"status": "error", "database": "error", "reason": problem}, status=503)
    else:
        response = JsonResponse({"status": "ok", "database": "ok"})
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answers ``/healthz`` (and ``/healthz/``) itself; every other request goes on down the stack."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.rstrip("/") == PATH:
            return healthz(request)
        return self.get_response(request)
