import shlex
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _


def createsuperuser_command():
    """A command that creates the first administrator with no terminal, runnable from any directory."""
    variables = "DJANGO_SUPERUSER_USERNAME=admin DJANGO_SUPERUSER_EMAIL=admin@example.com " \
                "DJANGO_SUPERUSER_PASSWORD='choose-a-long-password'"
    manage = shlex.join([sys.executable, str(settings.BASE_DIR / "manage.py"), "createsuperuser", "--noinput"])
    return f"{variables} {manage}"


class Command(BaseCommand):
    help = _("Ask for a first administrator when there is none (on a terminal); otherwise say how to add one.")

    def handle(self, *args, **options):
        if get_user_model().objects.filter(is_superuser=True).exists():
            return
        if sys.stdin.isatty():
            self.stdout.write(_("No administrator yet: create the first one."))
            call_command("createsuperuser")
        else:
            self.stdout.write(_(
                "No administrator yet, and no terminal to ask for one. Create the first one with this command "
                "(choose the user name, e-mail and password):"
            ))
            self.stdout.write(f"  {createsuperuser_command()}")
