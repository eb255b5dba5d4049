from django.urls import path

from . import views

app_name = "api"
urlpatterns = [
    path("accounts/<str:identifier>/token", views.account_token, name="account_token"),
]
