"""The address a request comes from, for throttling (the token API's key failures, the admin's sign-in).

REMOTE_ADDR, unless OAUTHMAIL_PROXY_COUNT says how many reverse proxies stand in front of oauthmail:
each of them appends the address it was reached from to X-Forwarded-For, so the client is the entry
that many places from the end. Entries further left are whatever the client sent, and are never
trusted: without the setting, X-Forwarded-For is ignored altogether.
"""
from django.conf import settings


def client_ip(request):
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.OAUTHMAIL_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if not forwarded:
        return remote
    return forwarded[-count] if len(forwarded) >= count else forwarded[0]
