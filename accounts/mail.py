"""A Django e-mail backend that sends over SMTP with XOAUTH2, as one oauthmail account.

    EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    OAUTHMAIL_EMAIL_ACCOUNT = "noreply"      # the account's identifier

Host, port and security are the account's SMTP settings (blank: its provider's defaults, e.g.
smtp.office365.com:587 STARTTLS); its "verify server certificate" applies. The token comes from
`token_get` (refreshed first when it expires within OAUTHMAIL_MIN_TOKEN_VALIDITY), before connecting.
Logging in (connect, greeting, EHLO, STARTTLS, AUTH), each message and the closing QUIT must each end
within OAUTHMAIL_HTTP_TIMEOUT seconds (oauthmail/deadlines.py); else OAuth2MailError says it took too long.
"""
import smtplib
from contextlib import contextmanager

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from oauthmail import deadlines

from . import services
from .connection import NoMailServer, mail_server, sasl_initial_response, ssl_context
from .models import Account, Security

ACTOR = "mail-backend"


class OAuth2MailError(smtplib.SMTPException):
    """oauthmail could not log in or send for the backend: no such account, no token, a server too slow ..."""


class OAuth2EmailBackend(EmailBackend):
    def __init__(self, account=None, fail_silently=False, **kwargs):
        kwargs.update(username="", password="")  # no LOGIN: XOAUTH2 instead, in open()
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.account_identifier = account or getattr(settings, "OAUTHMAIL_EMAIL_ACCOUNT", "")
        self.account = None
        if self.timeout is None:
            self.timeout = settings.OAUTHMAIL_HTTP_TIMEOUT

    @property
    def connection_class(self):
        return deadlines.SMTP_SSL if self.use_ssl else deadlines.SMTP

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

    @sensitive_variables("token")
    def _token(self):
        try:
            token, _expires_at = services.token_get(account=self.account, actor=ACTOR)
        except services.TokenUnavailable as error:
            raise OAuth2MailError(str(error)) from None
        return token

    @sensitive_variables("token", "initial")
    def _login(self, server, token):
        initial = sasl_initial_response(mechanism="XOAUTH2", email=self.account.email, token=token, server=server)
        self.connection.ehlo_or_helo_if_needed()
        self.connection.auth("XOAUTH2", lambda challenge=None: "" if challenge else initial)

    @contextmanager
    def _bounded(self):
        """The SMTP dialogue in the block ends within OAUTHMAIL_HTTP_TIMEOUT seconds, or OAuth2MailError."""
        seconds = settings.OAUTHMAIL_HTTP_TIMEOUT
        with deadlines.Deadline(seconds) as deadline:
            for connection in (self.connection, self._partial_connection):
                if connection is not None and connection.sock is not None:
                    deadline.watch(connection.sock)
            try:
                yield
            except OSError as error:  # smtplib's errors too
                if not deadline.expired:
                    raise
                raise OAuth2MailError(
                    _("%(host)s:%(port)s took too long: the SMTP dialogue did not end within %(seconds)s seconds.")
                    % {"host": self.host, "port": self.port, "seconds": seconds}
                ) from error

    @sensitive_variables("token")
    def open(self):
        if self.connection:
            return False
        try:
            server = self._prepare()
            token = self._token()  # first: a refresh does not keep the mail server waiting
        except OAuth2MailError:
            if not self.fail_silently:
                raise
            return None
        try:
            with self._bounded():
                opened = super().open()
                if opened:
                    self._login(server, token)
        except smtplib.SMTPException:  # OAuth2MailError, SMTPAuthenticationError, ...
            self.close()
            if not self.fail_silently:
                raise
            return None
        return opened

    def close(self):
        with self._bounded():
            super().close()

    def _send(self, email_message):
        with self._bounded():
            return super()._send(email_message)
