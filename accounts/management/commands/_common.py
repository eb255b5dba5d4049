"""Helpers shared by the account commands."""
import getpass

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from accounts.models import Account


def cli_actor():
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):
        return "cli"


def get_account(identifier):
    try:
        return Account.objects.select_related("application").get(identifier=identifier)
    except Account.DoesNotExist:
        raise CommandError(_("No account with identifier “%(identifier)s”.") % {"identifier": identifier}) from None
