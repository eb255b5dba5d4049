"""Every sentence oauthmail writes down for later, by code: token events, errors, connection checks.

What is stored is a code and its facts (JSON: names, numbers, ISO times, the provider's or the
server's own words), never our sentence: `render(code, params)` writes it in the reader's language
when it is shown (a French administrator reads French, whatever language cron ran in).

Facts of an error (`facts_text`): ``{"message": <a code below>, ...its parameters, "detail": <the
provider's or the server's own words, kept as they were>, "provider_code": <e.g. AADSTS50173>}``;
every key is optional. Rendering rules for parameters: a key ending in ``_at`` is a time, shown in
the configured zone with its name; ``protocol`` and ``step`` are shown by their labels; a nested
dict is itself error facts. A code missing here (an old row, a newer version) falls back to the
facts' own words.
"""
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from .times import local

LABELS = {
    "field": {},  # a model field's label by its name: the accounts app adds its own (accounts/apps.py)
    "protocol": {"imap": _("IMAP"), "pop": _("POP"), "smtp": _("SMTP")},
    "credential": {"client_secret": _("client secret"), "certificate": _("certificate")},
    "step": {
        "token": _("getting a token"),
        "connect": _("connecting"),
        "starttls": _("STARTTLS"),
        "authenticate": _("logging in"),
        "select": _("opening INBOX"),
        "stat": _("STAT"),
        "mail_from": _("MAIL FROM"),
        "send": _("sending the test message"),
    },
}

TEXTS = {
    # --- Token events (TokenEvent.code) ---------------------------------------------------------
    "token.initialised": _("Signed in as %(who)s."),
    "token.initialised_shared": _("Signed in as %(who)s for the shared mailbox %(mailbox)s."),
    "token.initialised_app_only": _("App-only token obtained."),
    "token.sign_in_waiting": _("Waiting for a sign-in with code %(code)s."),
    "token.sign_in_started": _("Browser sign-in started."),
    "token.init_failed": _("Init. Token failed: %(failure)s"),
    "token.refreshed": _("Access token valid until %(expires_at)s."),
    "token.refresh_failed": _("Refresh failed: %(failure)s"),
    "token.reauth_required": _("Refresh refused, sign in again (Init. Token): %(failure)s"),
    "token.read": _("Token read by API client %(name)s."),
    "token.stored_handed_out": _("The refresh failed; the stored access token, valid until %(expires_at)s, "
                                 "was handed out."),
    "token.failing_warning": _("The last refresh failed (%(error)s); this token is valid until %(expires_at)s."),
    "account.mail_servers_changed": _("%(changes)s."),
    "account.mail_servers_approved": _("Insecure mail-server settings approved."),
    "account.token_dropped": _("%(rebound)s: the token of the previous mailbox was dropped; run Init. Token."),
    "account.deleted": _("Account %(account)s deleted."),
    "connection.ok": _("%(where)s: OK. %(detail)s"),
    "connection.failed": _("%(where)s: failed at %(step)s: %(detail)s"),
    "relay.sent": _("Relay client %(client)s: <%(sender)s> to %(recipients)s, %(size)s bytes, sent. Answer: %(reply)s"),
    "relay.refused": _(
        "Relay client %(client)s: <%(sender)s> to %(recipients)s, %(size)s bytes, refused. Answer: %(reply)s"
    ),
    # --- Token errors met by oauthmail itself ----------------------------------------------------
    "token.no_identity": _("The provider did not say who signed in: the token was refused."),
    "token.identity_mismatch": _("%(who)s signed in, but this account needs %(expected)s: the token was refused."),
    "token.no_refresh_token": _("This account has no refresh token: run Init. Token."),
    "token.no_refresh_token_given": _(
        "The provider gave no refresh token, so the token could not be kept fresh: nothing was stored. "
        "Sign in again and accept every permission asked."
    ),
    "token.sign_in_too_slow": _("The sign-in took too long: start Init. Token again."),
    "token.code_expired": _("The code expired before anyone signed in: start Init. Token again."),
    "token.decryption": _(
        "Cannot decrypt %(what)s: none of the keys in OAUTHMAIL_ENCRYPTION_KEYS fits. "
        "Restore the key it was encrypted with (it may have been removed too early)."
    ),
    "token.busy": _("Another process is busy with this account's token; try again shortly."),
    "token.never_initialised": _("The token was never initialised: run Init. Token."),
    "token.sign_in_again": _("The mailbox must be signed in again (Init. Token): %(error)s"),
    "token.init_failed_error": _("Init. Token failed: %(error)s"),
    "token.state_unreadable": _(
        "This Init. Token's saved state cannot be decrypted with the current encryption keys (they changed "
        "while it was waiting): start Init. Token again."
    ),
    # --- Microsoft (providers/microsoft.py); the provider's own words follow ----------------------
    "microsoft.error": _("Microsoft answered with an error."),
    "microsoft.authorization_declined": _("The sign-in was declined."),
    "microsoft.expired_token": _("The code expired before anyone signed in: start Init. Token again."),
    "microsoft.bad_verification_code": _("The device code is not known to Microsoft: start Init. Token again."),
    "microsoft.invalid_grant": _(
        "Microsoft refused the refresh token: the mailbox must be signed in again (Init. Token)."
    ),
    "microsoft.interaction_required": _("Microsoft requires the user to sign in again (Init. Token)."),
    "microsoft.consent_required": _("The application needs consent in Entra ID before it can be used."),
    "microsoft.invalid_client": _(
        "Microsoft refused the application's credentials: check the client ID and the client secret "
        "(it may have expired)."
    ),
    "microsoft.unauthorized_client": _(
        "The application is not allowed to use this sign-in method (for device code, enable "
        "“Allow public client flows” in Entra ID)."
    ),
    "microsoft.invalid_scope": _("Microsoft refused the requested scopes."),
    "microsoft.invalid_request": _("Microsoft refused the request."),
    "microsoft.access_denied": _("Access was denied."),
    "microsoft.unavailable": _("Microsoft is unavailable (HTTP %(status)s); it will be tried again."),
    "microsoft.unreachable": _("Could not reach %(authority)s: %(error)s"),
    "microsoft.authority": _("Microsoft did not accept the authority %(authority)s: %(error)s"),
    "microsoft.no_client_credential": _(
        "App-only access needs the application's client secret or certificate, and none is set."
    ),
    "microsoft.no_access_token": _("Microsoft's answer held no access token."),
    # --- Any identity provider (providers/http.py) ---------------------------------------------------
    "provider.too_slow": _("%(host)s took too long to answer: no complete answer within %(seconds)s seconds."),
    "provider.cancelled": _("The request to %(host)s was cancelled: oauthmail is stopping."),
    # --- Google (providers/google.py) -------------------------------------------------------------
    "google.error": _("Google answered with an error."),
    "google.invalid_grant": _("Google refused the grant: the mailbox must be signed in again (Init. Token)."),
    "google.invalid_client": _("Google refused the application's client ID or secret."),
    "google.unauthorized_client": _(
        "Google refused this client for this grant (for a service account: is domain-wide delegation granted "
        "for these scopes in the Admin console?)."
    ),
    "google.access_denied": _("Access was denied."),
    "google.invalid_scope": _("Google refused the requested scopes."),
    "google.unavailable": _("Google is unavailable (HTTP %(status)s); it will be tried again."),
    "google.unreachable": _("Could not reach Google: %(error)s"),
    "google.unsupported_flow": _("Google mail cannot use the device-code flow: use the browser sign-in."),
    "google.bad_response": _("Google's answer could not be read; try again."),
    "google.no_service_account": _("App-only access to Google needs a service account key on the application."),
    "google.scope_not_granted": _(
        "Google did not grant %(scopes)s: nothing was stored. Start Init. Token again and, on Google's "
        "consent screen, tick the access to the mailbox (“Read, compose, send and permanently delete all "
        "your email from Gmail”)."
    ),
    # --- Test connection (accounts/mail_dialogues.py) ------------------------------------------------
    "check.imap_ok": ngettext_lazy(
        "Logged in with %(mechanism)s; INBOX holds %(count)d message.",
        "Logged in with %(mechanism)s; INBOX holds %(count)d messages.", "count",
    ),
    "check.pop_ok": ngettext_lazy(
        "Logged in with %(mechanism)s; the mailbox holds %(count)d message (%(size)d bytes).",
        "Logged in with %(mechanism)s; the mailbox holds %(count)d messages (%(size)d bytes).", "count",
    ),
    "check.smtp_sent": _("Logged in with %(mechanism)s; a test message was sent to %(address)s."),
    "check.smtp_mail_from": _(
        "Logged in with %(mechanism)s; the server accepted MAIL FROM:<%(email)s> (nothing was sent)."
    ),
    "check.no_server": _("No %(protocol)s server is set for this account and its provider has no default."),
    "check.bad_address": _("“%(address)s” is not a valid e-mail address."),
    "check.refused": _(
        "Refused: %(problem)s, and no administrator set these mail servers. An administrator (permission "
        "“Can change an account's mail servers”) must save them on the account's page first."
    ),
    "check.plaintext": _("%(protocol)s without TLS (security “none”) would send the token in clear text"),
    "check.unverified": _("with certificate checking off, the token would go to any server that answers"),
    "net.host_not_found": _("The host name %(host)s could not be found (%(reason)s)."),
    "net.refused": _("%(host)s refused the connection on port %(port)s: is the port right, and the server running?"),
    "net.timeout": _(
        "No answer from %(server)s within %(seconds)s seconds: check the port and the security "
        "(TLS or STARTTLS), or a firewall."
    ),
    "net.too_slow": _("%(server)s took too long: the dialogue did not end within %(seconds)s seconds."),
    "net.certificate": _(
        "The server's certificate could not be verified (%(reason)s). Turn off “verify server "
        "certificate” only for a local test server."
    ),
    "net.tls": _("TLS with %(server)s failed (%(reason)s): check that this port expects this security "
                 "(TLS or STARTTLS)."),
    "net.closed": _("%(server)s closed the connection (%(reason)s)."),
    "net.value": _("%(server)s: %(reason)s"),
    "net.other": _("Could not talk to %(server)s: %(reason)s"),
    # --- Alert deliveries (alerts/transports.py) ----------------------------------------------------------
    "alert.webhook_refused": _("The webhook answered HTTP %(status)s."),
    "alert.webhook_unreachable": _("Could not reach the webhook: %(error)s."),
    "alert.email_failed": _("The e-mail could not be sent."),
    "alert.channel_off": _("The channel was turned off or deleted before the alert could be sent."),
}
# Events whose parameters are a failure's facts (see facts_text), shown as %(failure)s.
FAILURE_EVENTS = {"token.init_failed", "token.refresh_failed", "token.reauth_required"}


def label(kind, value):
    return str(LABELS[kind].get(value, value))


def _setting(value, *, unset):
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    return str(value) if value not in ("", None) else str(unset)


def _changes(changes, *, unset):
    """[[field, old, new], ...] as 'IMAP host: (default) → 127.0.0.1; …' (field labels: LABELS["field"])."""
    return "; ".join(_("%(field)s: %(old)s → %(new)s") % {
        "field": label("field", field), "old": _setting(old, unset=unset), "new": _setting(new, unset=unset),
    } for field, old, new in changes)


def _prepared(params):
    values = {}
    for key, value in params.items():
        if key == "changes":  # mail-server settings
            value = _changes(value, unset=_("(default)"))
            if params.get("approved"):
                # "%(changes)s." ends the sentence: no period of its own here.
                value += ". " + str(_("Insecure settings approved.")).rstrip(".")
        elif key == "rebound":  # what a token was bound to
            value = _changes(value, unset="-")
        elif isinstance(value, dict):
            value = facts_text(value)
        elif key.endswith("_at"):
            value = local(value) or "-"
        elif key in LABELS and isinstance(value, str):
            value = label(key, value)
        values[key] = value
    if "protocol" in params:
        values.setdefault("where", " ".join(filter(None, [values["protocol"], str(params.get("server") or "")])))
    return values


def render(code, params=None, *, catalogue=None):
    """`code`'s sentence with `params`, in the active language; the facts' own words for an unknown code.
    `catalogue`: another app's sentences (alerts/texts.py), rendered by the same rules."""
    params = params or {}
    template = (TEXTS if catalogue is None else catalogue).get(code)
    if template is None:
        return facts_text(params, message=False)
    values = _prepared(params)
    if code in FAILURE_EVENTS:
        values["failure"] = facts_text(params)
    try:
        return str(template % values)
    except (KeyError, TypeError, ValueError):  # facts written by another version: show what there is
        return facts_text(params, message=False) or code


def facts_text(facts, *, message=True):
    """An error's facts as one line: our words (`message`), then the provider's (`detail`), then its code."""
    if not isinstance(facts, dict):
        return str(facts or "")
    parts = []
    if message and facts.get("message") in TEXTS:
        parts.append(render(facts["message"], facts))
    detail = facts.get("detail")
    if detail:
        parts.append(facts_text(detail))
    text = " ".join(parts)
    code = facts.get("provider_code") or ""
    if code and code not in text:
        text = f"{text} ({code})" if text else code
    return text
