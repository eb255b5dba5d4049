from django.contrib import admin


class OAuthmailAdminSite(admin.AdminSite):
    site_header = "oauthmail"
    site_title = "oauthmail"
    index_template = "admin/dashboard.html"

    def index(self, request, extra_context=None):
        from monitoring.dashboard import dashboard

        return super().index(request, {**dashboard(user=request.user), **(extra_context or {})})
