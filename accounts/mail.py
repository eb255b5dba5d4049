"""A Django e-mail backend that sends over SMTP with XOAUTH2, as one oauthmail account.

    EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    OAUTHMAIL_EMAIL_ACCOUNT = "noreply"      # the account's identifier

Host, port and security are the account's SMTP settings (blank: its provider's defaults, e.g.
smtp.office365.com:587 STARTTLS); its "verify server certificate" applies. The token comes from
`token_get`, refreshed first when it expires within 5 minutes.
"""
import smtplib

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from . import services
from .connection import NoMailServer, mail_server, sasl_initial_response, ssl_context
from .models import Account, Security

ACTOR = "mail-backend"


class OAuth2MailError(smtplib.SMTPException):
    """oauthmail could not log in for the backend (no such account, no token ...)."""


class OAuth2EmailBackend(EmailBackend):
    def __init__(self, account=None, fail_silently=False, **kwargs):
        kwargs.update(username="", password="")  # no LOGIN: XOAUTH2 instead, in open()
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.account_identifier = account or getattr(settings, "OAUTHMAIL_EMAIL_ACCOUNT", "")
        self.account = None

    @cached_property
    def ssl_context(self):
        return ssl_context(account=self.account)

    def _prepare(self):
        """Find the account and aim at its SMTP server; raises OAuth2MailError."""
        if not self.account_identifier:
            raise OAuth2MailError(_("OAUTHMAIL_EMAIL_ACCOUNT names no account."))
        try:
            self.account = Account.objects.select_related("application").get(identifier=self.account_identifier)
            server = mail_server(account=self.account, protocol="smtp")
        except Account.DoesNotExist:
            raise OAuth2MailError(
                _("No account with identifier “%(identifier)s”.") % {"identifier": self.account_identifier}
            ) from None
        except NoMailServer as error:
            raise OAuth2MailError(str(error)) from None
        self.host, self.port = server.host, server.port
        self.use_ssl = server.security == Security.TLS
        self.use_tls = server.security == Security.STARTTLS
        return server

    @sensitive_variables("token", "initial")
    def _login(self, server):
        try:
            token, _expires_at = services.token_get(account=self.account, actor=ACTOR)
        except services.TokenUnavailable as error:
            raise OAuth2MailError(str(error)) from None
        initial = sasl_initial_response(mechanism="XOAUTH2", email=self.account.email, token=token, server=server)
        self.connection.ehlo_or_helo_if_needed()
        self.connection.auth("XOAUTH2", lambda challenge=None: "" if challenge else initial)

    def open(self):
        if self.connection:
            return False
        try:
            server = self._prepare()
        except OAuth2MailError:
            if not self.fail_silently:
                raise
            return None
        opened = super().open()
        if not opened:
            return opened
        try:
            self._login(server)
        except smtplib.SMTPException:  # OAuth2MailError, SMTPAuthenticationError, ...
            self.close()
            if not self.fail_silently:
                raise
            return None
        return True
