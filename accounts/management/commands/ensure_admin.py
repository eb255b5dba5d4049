import sys

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _


class Command(BaseCommand):
    help = _("Ask for a first administrator when there is none (on a terminal); otherwise say how to add one.")

    def handle(self, *args, **options):
        if get_user_model().objects.filter(is_superuser=True).exists():
            return
        if sys.stdin.isatty():
            self.stdout.write(_("No administrator yet: create the first one."))
            call_command("createsuperuser")
        else:
            self.stdout.write(_("No administrator yet: run `.venv/bin/python manage.py createsuperuser`."))
