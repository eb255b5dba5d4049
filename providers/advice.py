"""What a provider's or a mail server's error means, and what to do about it, in plain words.

One table, most specific first: `advice_for(code=..., text=...)` returns the first entry whose
pattern is found in the error's code or text (AADSTS codes, OAuth error names, SMTP and IMAP
answers), or None. Sources: Microsoft's AADSTS reference (https://login.microsoftonline.com/error),
Exchange Online's SMTP AUTH and OAuth for IMAP/POP/SMTP guides, Google's OAuth 2.0 and
Workspace API controls documentation.
"""
import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

SIGN_IN_AGAIN = _("Run Init. Token to sign the mailbox in again.")
APP_ONLY_EXCHANGE = _(
    "App-only: Exchange Online must know the application and let it open this mailbox: run New-ServicePrincipal "
    "and Add-MailboxPermission as shown on the application's page (allow up to an hour for it to apply)."
)


@dataclass(frozen=True)
class Advice:
    key: str
    pattern: str
    cause: str
    fix: str

    def matches(self, text):
        return re.search(self.pattern, text, re.IGNORECASE) is not None


def _aadsts(*numbers):
    alternatives = "|".join(str(number) for number in numbers)
    return rf"AADSTS(?:{alternatives})\b"


TABLE = [
    # --- Microsoft Entra ID: refresh tokens that no longer work -------------------------------------
    Advice("AADSTS700082", _aadsts(700082, 70008), _(
        "The refresh token expired: it was not used for 90 days (or for the tenant's shorter inactivity limit)."
    ), _("Run Init. Token to sign the mailbox in again, and keep refresh_tokens running (cron or --loop): it uses "
         "every refresh token at least once a week, so this does not happen again.")),
    Advice("AADSTS50173", _aadsts(50173, 50133, 50055), _(
        "The refresh token was revoked: the user's password was changed, reset or has expired, or an "
        "administrator revoked the user's sessions."
    ), _("Once the user has a valid password, run Init. Token to sign the mailbox in again.")),
    Advice("AADSTS70043", _aadsts(70043, 700084), _(
        "A Conditional Access sign-in frequency policy limits how long a sign-in lasts, and the refresh token "
        "outlived it."
    ), _("Run Init. Token. So that it does not recur, ask the Entra ID administrator to exclude this mailbox or "
         "application from the sign-in frequency policy, or use app-only access.")),
    Advice("AADSTS50076", _aadsts(50076, 50074, 50158), _(
        "Multi-factor authentication is now required for this user (a new Conditional Access rule, security "
        "defaults, or a sign-in from a new place)."
    ), _("Run Init. Token: the user completes the multi-factor sign-in in the browser.")),
    Advice("AADSTS50079", _aadsts(50079, 50072), _("The user must register for multi-factor authentication."), _(
        "The user registers a second factor (https://aka.ms/mfasetup), then run Init. Token.")),
    Advice("AADSTS53003", _aadsts(53003, 53000, 53001), _(
        "A Conditional Access policy blocked the sign-in (location, device or client application rules)."
    ), _("Ask the Entra ID administrator to read the sign-in log (Conditional Access tab) and allow this "
         "application or mailbox, for example from oauthmail's server address.")),
    Advice("AADSTS50057", _aadsts(50057), _("The user account is disabled in Entra ID."), _(
        "Enable the account (or choose another sign-in user for a shared mailbox), then run Init. Token.")),
    Advice("AADSTS50034", _aadsts(50034, 50020), _(
        "The user does not exist in this tenant: a typing error, a guest or personal account, or another tenant."
    ), _("Check the account's e-mail address or sign-in user and the application's tenant; sign in with a work "
         "account of this tenant.")),
    # --- Microsoft Entra ID: the application's registration ----------------------------------------
    Advice("AADSTS7000222", _aadsts(7000222), _("The application's client secret has expired."), _(
        "Create a new client secret in Entra ID (App registrations → Certificates & secrets) and enter it, with "
        "its expiry date, on the application in oauthmail.")),
    Advice("AADSTS7000215", _aadsts(7000215), _(
        "The client secret entered in oauthmail is wrong: often the secret's ID was copied instead of its value."
    ), _("Copy the secret's Value (shown only when it is created; otherwise create a new secret) into the "
         "application's client secret in oauthmail.")),
    Advice("AADSTS7000218", _aadsts(7000218), _(
        "Microsoft expected a client secret or certificate: public client flows are not allowed for this "
        "application."
    ), _("For device code, set “Allow public client flows” to Yes in Entra ID (App registrations → "
         "Authentication); otherwise enter the client secret or certificate on the application.")),
    Advice("AADSTS700027", _aadsts(700027, 700023), _(
        "Microsoft could not check the certificate's signature: the certificate in Entra ID is not the one in "
        "oauthmail, or it was removed."
    ), _("Upload the certificate (public part) in Entra ID → Certificates & secrets, or upload the matching "
         "certificate and key on the application in oauthmail.")),
    Advice("AADSTS700024", _aadsts(700024), _(
        "The signed client assertion is outside its validity window: the server's clock is wrong."
    ), _("Synchronise the oauthmail server's clock (NTP).")),
    Advice("AADSTS65001", _aadsts(65001, 65004), _(
        "Nobody has consented to the application's permissions in this tenant (or the user declined)."
    ), _("In Entra ID → App registrations → API permissions, click “Grant admin consent”, or let the user "
         "accept the permissions at the next Init. Token.")),
    Advice("AADSTS700016", _aadsts(700016), _(
        "No application with this client ID exists in this tenant: a wrong client ID or tenant, or a "
        "single-tenant application used from another tenant."
    ), _("Compare the application's tenant and client ID in oauthmail with the app registration's Overview "
         "page in Entra ID.")),
    Advice("AADSTS90002", _aadsts(90002, 90023), _(
        "The tenant was not found: a mistyped tenant ID or domain, or a tenant in a national cloud."
    ), _("Check the application's tenant (directory ID or domain). For a national cloud, set its authority URL, "
         "e.g. https://login.microsoftonline.us.")),
    Advice("AADSTS7000112", _aadsts(7000112), _("The application is disabled in this tenant."), _(
        "Enable it in Entra ID → Enterprise applications → the application → Properties → “Enabled for users "
        "to sign in”.")),
    Advice("AADSTS500011", _aadsts(500011), _(
        "Office 365 Exchange Online was not found in the tenant: it has no Exchange Online, or a scope is wrong."
    ), _("Check that the tenant has Exchange Online licences, and the application's scopes (blank: oauthmail's "
         "defaults).")),
    Advice("AADSTS70011", _aadsts(70011), _("A requested scope is invalid."), _(
        "Check the application's scopes (Advanced section); leave them blank for oauthmail's defaults.")),
    # --- Microsoft Entra ID: the browser sign-in ----------------------------------------------------
    Advice("AADSTS50011", _aadsts(50011), _(
        "The redirect URI sent does not match any registered for the application."
    ), _("In Entra ID → Authentication → Web, add exactly the redirect URI shown on the application's page in "
         "oauthmail (scheme, host, port and path). Behind a proxy, set OAUTHMAIL_BASE_URL.")),
    Advice("AADSTS54005", _aadsts(54005, 70002), _(
        "The sign-in's authorisation code was already used: the answer page was reloaded or opened twice."
    ), _("Start Init. Token again; nothing else is needed.")),
    # --- Exchange Online's mail servers (Test connection, the mail backend) --------------------------
    Advice("SMTP 5.7.139", r"\b5\.7\.139\b", _(
        "Exchange Online refused SMTP AUTH: it is turned off for the tenant or for this mailbox, or security "
        "defaults block it."
    ), _("Microsoft 365 admin center → the user → Mail → Manage email apps → tick Authenticated SMTP "
         "(Set-CASMailbox -SmtpClientAuthenticationDisabled $false); check the tenant's setting "
         "(Set-TransportConfig -SmtpClientAuthenticationDisabled $false) and that security defaults allow it.")),
    Advice("SMTP 5.7.3", r"\b5\.7\.3\b", _(
        "Exchange Online refused the SMTP login: with app-only access, it does not know the application or the "
        "application may not use this mailbox; with a delegated token, SMTP.Send is missing."
    ), APP_ONLY_EXCHANGE),
    Advice("SMTP 5.7.60", r"\b5\.7\.60\b", _("The mailbox may not send with this From address."), _(
        "Send from the account's own address, or grant it Send As on the other address (Add-RecipientPermission).")),
    Advice("IMAP AUTHENTICATE failed", r"AUTHENTICATE failed|Authentication failure", _(
        "Exchange Online refused the IMAP or POP login. With app-only access this almost always means Exchange "
        "Online does not know the application (New-ServicePrincipal) or it has no permission on this mailbox "
        "(Add-MailboxPermission); with a delegated token, IMAP or POP may be turned off for the mailbox."
    ), _("App-only: run New-ServicePrincipal and Add-MailboxPermission as shown on the application's page "
         "(allow up to an hour). Delegated: turn IMAP or POP on for the mailbox (Set-CASMailbox -ImapEnabled "
         "$true -PopEnabled $true) and check the scopes.")),
    # --- Google ----------------------------------------------------------------------------------------
    Advice("admin_policy_enforced", r"\badmin_policy_enforced\b", _(
        "The Google Workspace administrator blocks this application (Admin console → Security → API controls)."
    ), _("In the Admin console, Security → Access and data control → API controls → Manage third-party app "
         "access: make the OAuth client trusted, then run Init. Token.")),
    Advice("org_internal", r"\borg_internal\b", _(
        "The OAuth consent screen is “Internal”: only users of its own Workspace organisation may sign in."
    ), _("Sign in with a user of that organisation, or make the app “External”.")),
    Advice("unauthorized_client", r"\bunauthorized_client\b", _(
        "The provider refused this client for this kind of sign-in. Google service account: domain-wide "
        "delegation is not granted for its client ID and https://mail.google.com/. Microsoft: public client "
        "flows are off."
    ), _("Google: Admin console → Security → API controls → Domain-wide delegation → add the service account's "
         "client ID with https://mail.google.com/ (it may take a while to apply). Microsoft: allow public "
         "client flows for device code.")),
    Advice("google_testing", r"^google_testing$", _(
        "The Google app's consent screen is in “Testing”: Google ends its refresh tokens 7 days after sign-in."
    ), _("Publish the app (Google Cloud console → OAuth consent screen → Publish app), then run Init. Token; "
         "until then, sign in again every week.")),
    Advice("Gmail login refused", r"AUTHENTICATIONFAILED|5\.7\.8\b|Username and Password not accepted", _(
        "Gmail refused the login: the token is not for this address or lacks https://mail.google.com/, or IMAP "
        "is turned off for the user in the Admin console."
    ), _("Check the account's address and the application's scopes, and that IMAP is allowed for the user, "
         "then run Init. Token.")),
    Advice("redirect_uri_mismatch", r"\bredirect_uri_mismatch\b", _(
        "The redirect URI sent is not among the OAuth client's authorised redirect URIs."
    ), _("Add exactly the redirect URI shown on the application's page to the OAuth client (Google Cloud "
         "console → Credentials). Behind a proxy, set OAUTHMAIL_BASE_URL.")),
    Advice("invalid_client", r"\b(invalid_client|deleted_client|disabled_client)\b", _(
        "The provider refused the application's client ID or secret: a wrong or replaced secret, or a deleted "
        "or disabled client."
    ), _("Copy the client ID and secret again from the provider's console into the application in oauthmail.")),
    Advice("access_denied", r"\baccess_denied\b", _(
        "The user declined, or (Google app in “Testing”) is not one of the app's test users."
    ), _("Run Init. Token again and accept every permission asked; for a Google app in Testing, add the user as a "
         "test user.")),
    Advice("invalid_grant", r"\binvalid_grant\b|Token has been expired or revoked", _(
        "The provider no longer accepts the refresh token: it expired, was revoked by the user or an "
        "administrator, or the password changed (Google: also unused for 6 months, or a Testing app's 7 days)."
    ), SIGN_IN_AGAIN),
    # --- oauthmail's own checks -------------------------------------------------------------------------
    Advice("identity_mismatch", r"^identity_mismatch$", _(
        "Another user signed in than the one this account needs."
    ), _("Start Init. Token again and sign in as the mailbox's user (for a shared mailbox, set its sign-in "
         "user).")),
    Advice("decryption", r"^decryption$", _(
        "The key that encrypted this secret is no longer in OAUTHMAIL_ENCRYPTION_KEYS."
    ), _("Put the old key back in OAUTHMAIL_ENCRYPTION_KEYS (after the current one), then run "
         "manage.py rotate_encryption_keys.")),
    Advice("network", r"^network$", _(
        "oauthmail could not reach the provider (name resolution, firewall, proxy or an outage)."
    ), _("Check the server's outgoing HTTPS access to the provider; the refresh is tried again at the next run.")),
    Advice("unavailable", r"^HTTP (429|5\d\d)$", _("The provider was unavailable or throttled requests."), _(
        "Nothing to do if it passes: oauthmail tries again by itself, at the next run at the latest.")),
]
BY_KEY = {advice.key: advice for advice in TABLE}


def advice_for(*, code="", text="", google_testing=False):
    """The advice for an error: its provider code first (exactly), then anything found in its text."""
    if google_testing and ("invalid_grant" in (code or "") or "expired or revoked" in (text or "")):
        return BY_KEY["google_testing"]
    for candidate in filter(None, [code, text]):
        for advice in TABLE:
            if advice.matches(candidate):
                return advice
    return None
