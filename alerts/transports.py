"""How alerts leave: one small function per channel kind, in an explicit registry (TRANSPORTS).

`send(channel, alerts)` writes the alerts in the active language (the caller sets the site's) and
returns (ok, error facts). Several alerts make one message: a summary and one paragraph each.
"""
import hashlib
import hmac
import json
import logging

from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.translation import gettext as _

from oauthmail.crypto import DecryptionError

from . import http
from .texts import GROUP_SUBJECT, alert_url

logger = logging.getLogger(__name__)

SHOWN = 20  # alerts written out in one message; the others are counted
PAYLOAD_ALERTS = 200  # alerts listed in one webhook payload
SIGNATURE_HEADER = "X-Oauthmail-Signature"


def _subject(alerts):
    if len(alerts) == 1:
        return alerts[0].subject
    return GROUP_SUBJECT % {"count": len(alerts)}


def _text(alerts):
    if len(alerts) == 1:
        return alerts[0].text
    parts = [f"• {alert.subject}\n{alert.text}" for alert in alerts[:SHOWN]]
    if len(alerts) > SHOWN:
        parts.append(_("… and %(count)d more: see the alerts in oauthmail's admin.") % {"count": len(alerts) - SHOWN})
    return "\n\n".join(parts)


def send_email(channel, alerts):
    message = EmailMessage(subject=f"[oauthmail] {_subject(alerts)}", body=_text(alerts), to=channel.recipients)
    try:
        message.send(fail_silently=False)
    except Exception as error:  # smtplib, the OAuth2 backend, the network: all end as a failed delivery
        logger.warning("Alert e-mail to %s failed: %s", channel.name, error)
        return False, {"message": "alert.email_failed", "detail": " ".join(str(error).split())[:500]}
    return True, {}


def payload(alerts):
    """The webhook's JSON: `text` for Microsoft Teams and Slack, the alerts' facts for programs."""
    return {
        "text": f"{_subject(alerts)}\n\n{_text(alerts)}",
        "source": "oauthmail",
        "sent_at": timezone.now().isoformat(),
        "test": all(alert.kind == "test" for alert in alerts),
        "alerts": [{
            "id": alert.pk, "kind": alert.kind, "state": alert.state, "condition": alert.key,
            "at": alert.created_at.isoformat(), "subject": alert.subject, "text": alert.text,
            "url": alert_url(alert) or None, "facts": alert.params,
        } for alert in alerts[:PAYLOAD_ALERTS]],
        "more": max(0, len(alerts) - PAYLOAD_ALERTS),
    }


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(channel, alerts):
    body = json.dumps(payload(alerts), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "oauthmail"}
    try:
        secret = channel.secret
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body)
        http.post(channel.url, body=body, headers=headers)
    except DecryptionError as error:
        return False, {"message": "token.decryption", "what": error.what}
    except http.WebhookError as error:
        logger.warning("Alert webhook %s failed: %s", channel.name, error)
        return False, error.facts
    return True, {}


TRANSPORTS = {"email": send_email, "webhook": send_webhook}


def send(channel, alerts):
    return TRANSPORTS[channel.kind](channel, alerts)
