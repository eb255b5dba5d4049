"""An account's own mail servers: which settings are insecure, and whether an administrator approved them.

Test connection and the mail backend send the account's token to these servers. Security "none"
sends it in clear text, and TLS without certificate checking to whoever answers: both only as an
administrator (permission `accounts.change_mail_servers`) set them. The approval is the settings
they saved, as text; settings changed any other way (a shell, an older version, the database) no
longer match it, so the approval lapses by itself.
"""
import json

from .models import Security

PROTOCOL_FIELDS = {
    "imap": ("imap_host", "imap_port", "imap_security"),
    "pop": ("pop_host", "pop_port", "pop_security"),
    "smtp": ("smtp_host", "smtp_port", "smtp_security"),
}
MAIL_SERVER_FIELDS = (*(name for names in PROTOCOL_FIELDS.values() for name in names), "verify_certificate")
PERMISSION = "accounts.change_mail_servers"


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
    """Why a token may not go to this protocol's server, as facts (oauthmail/texts.py), or None when it may."""
    if not is_insecure(account, protocol) or is_approved(account):
        return None
    if getattr(account, f"{protocol}_security") == Security.NONE:
        problem = {"message": "check.plaintext", "protocol": protocol}
    else:
        problem = {"message": "check.unverified"}
    return {"message": "check.refused", "problem": problem}


def changes(before, after):
    """[(field name, old value, new value)] of the mail-server settings that differ."""
    return [(name, before[name], getattr(after, name)) for name in MAIL_SERVER_FIELDS
            if before[name] != getattr(after, name)]
