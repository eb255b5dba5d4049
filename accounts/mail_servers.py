"""An account's own mail servers: which settings are insecure, and whether an administrator approved them.

Test connection and the mail backend send the account's token to these servers. Security "none"
sends it in clear text, and TLS without certificate checking to whoever answers: both only as an
administrator (permission `accounts.change_mail_servers`) set them. The approval is the settings
they saved, as text; settings changed any other way (a shell, an older version, the database) no
longer match it, so the approval lapses by itself.
"""
import json

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import Security

PROTOCOL_FIELDS = {
    "imap": ("imap_host", "imap_port", "imap_security"),
    "pop": ("pop_host", "pop_port", "pop_security"),
    "smtp": ("smtp_host", "smtp_port", "smtp_security"),
}
MAIL_SERVER_FIELDS = (*(name for names in PROTOCOL_FIELDS.values() for name in names), "verify_certificate")
PERMISSION = "accounts.change_mail_servers"
PROTOCOL_LABELS = {"imap": gettext_lazy("IMAP"), "pop": gettext_lazy("POP"), "smtp": gettext_lazy("SMTP")}


def snapshot(account):
    """The mail-server settings as the text an approval keeps."""
    return json.dumps({name: getattr(account, name) for name in MAIL_SERVER_FIELDS}, sort_keys=True)


def is_insecure(account, protocol=None):
    """Whether the token would go out in clear text or to an unverified server (for `protocol`, or any)."""
    protocols = [protocol] if protocol else list(PROTOCOL_FIELDS)
    if any(getattr(account, f"{name}_security") == Security.NONE for name in protocols):
        return True
    return not account.verify_certificate


def is_approved(account):
    return bool(account.mail_servers_approved) and account.mail_servers_approved == snapshot(account)


def refusal(account, protocol):
    """Why a token may not go to this protocol's server, or "" when it may."""
    if not is_insecure(account, protocol) or is_approved(account):
        return ""
    if getattr(account, f"{protocol}_security") == Security.NONE:
        problem = _("%(protocol)s without TLS (security “none”) would send the token in clear text") % {
            "protocol": PROTOCOL_LABELS[protocol]}
    else:
        problem = _("with certificate checking off, the token would go to any server that answers")
    return _(
        "Refused: %(problem)s, and no administrator set these mail servers. An administrator (permission "
        "“Can change an account's mail servers”) must save them on the account's page first."
    ) % {"problem": problem}


def describe(name, value):
    """A setting's value as an event shows it."""
    if name == "verify_certificate":
        return _("yes") if value else _("no")
    return str(value) if value not in ("", None) else _("(default)")


def changes(before, after):
    """[(field name, old value, new value)] of the mail-server settings that differ."""
    return [(name, before[name], getattr(after, name)) for name in MAIL_SERVER_FIELDS
            if before[name] != getattr(after, name)]
