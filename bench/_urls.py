"""bench/api.py's URLs: oauthmail's, and /bench/bare, a bare JSON view behind the same middleware: what
a Django view costs on this server with nothing of oauthmail's in it, to compare the token API with."""
from django.http import JsonResponse
from django.urls import include, path


def bare(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/bare", bare),
    path("", include("oauthmail.urls")),
]
