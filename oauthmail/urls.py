from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.views import oauth_callback
from monitoring.views import metrics

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("oauth/callback/", oauth_callback, name="oauth_callback"),
    path("api/v1/", include("api.urls")),
    path("metrics", metrics, name="metrics"),
]
