from django.contrib.admin.apps import AdminConfig


class OAuthmailAdminConfig(AdminConfig):
    """Django's admin, with oauthmail's site: its index opens on the health dashboard."""

    default_site = "oauthmail.admin_site.OAuthmailAdminSite"
