from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record the admin shows and never changes: events, runs, alerts (the audit trail)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OAuthmailAdminSite(admin.AdminSite):
    site_header = "oauthmail"
    site_title = "oauthmail"
    index_template = "admin/dashboard.html"

    def index(self, request, extra_context=None):
        from monitoring.dashboard import dashboard

        return super().index(request, {**dashboard(user=request.user), **(extra_context or {})})
