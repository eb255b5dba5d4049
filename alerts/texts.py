"""The alerts' sentences, by `<kind>.<state>` (oauthmail/texts.py renders them: times in the configured
zone, an account's error in plain words), each with the advice for its error and a link when
OAUTHMAIL_BASE_URL is set."""
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from oauthmail.texts import facts_text, render
from providers.advice import advice_for

SUBJECTS = {
    "account_status.failing": _("%(account)s: the token could not be refreshed"),
    "account_status.reauth_required": _("%(account)s must be signed in again (Init. Token)"),
    "account_status.recovered": _("%(account)s works again"),
    "credential_expiry.expired": _("%(application)s: the %(credential)s has expired"),
    "credential_expiry.soon": ngettext_lazy(
        "%(application)s: the %(credential)s expires in %(days)d day",
        "%(application)s: the %(credential)s expires in %(days)d days", "days",
    ),
    "refresh_token_limit.near": _("%(account)s: the refresh token ends soon unless it is used"),
    "google_testing.near": _("%(account)s: the sign-in ends soon (Google app in Testing)"),
    "refresh_overdue.overdue": _("refresh_tokens has not run since %(last_at)s"),
    "refresh_overdue.never": _("refresh_tokens has never run"),
    "refresh_overdue.recovered": _("refresh_tokens runs again"),
    "test.test": _("Test alert from oauthmail"),
}
TEXTS = {
    "account_status.failing": _(
        "The token of %(account)s (%(email)s) could not be refreshed: %(error)s oauthmail tries again at "
        "each run."
    ),
    "account_status.reauth_required": _(
        "The provider refused the refresh token of %(account)s (%(email)s): %(error)s Programs get no token "
        "for this mailbox until someone runs Init. Token on its page."
    ),
    "account_status.recovered": _("The token of %(account)s (%(email)s) is fresh again."),
    "credential_expiry.expired": _(
        "The %(credential)s of the application %(application)s expired on %(expires)s: its accounts can no "
        "longer get tokens. Create a new one at the provider and enter it on the application in oauthmail."
    ),
    "credential_expiry.soon": _(
        "The %(credential)s of the application %(application)s expires on %(expires)s. Create a new one at "
        "the provider and enter it on the application in oauthmail before then, or every account of the "
        "application stops working."
    ),
    "refresh_token_limit.near": _(
        "The refresh token of %(account)s (%(email)s) ends at %(expires_at)s unless it is used: providers end "
        "refresh tokens left unused (Microsoft after 90 days). Its refreshes keep failing: see the account's "
        "last error, or run Init. Token."
    ),
    "google_testing.near": _(
        "The Google app %(application)s is in “Testing”, so the refresh token of %(account)s (%(email)s) ends "
        "at %(expires_at)s, 7 days after its sign-in. Run Init. Token before then, or publish the app (Google "
        "Cloud console → OAuth consent screen)."
    ),
    "refresh_overdue.overdue": _(
        "The last run of refresh_tokens finished at %(last_at)s, more than %(minutes)d minutes ago: tokens are "
        "no longer refreshed ahead of time. Check its cron job or the refresher service (refresh_tokens --loop)."
    ),
    "refresh_overdue.never": _(
        "No run of refresh_tokens was ever recorded, yet accounts hold tokens: set up its cron job or the "
        "refresher service (refresh_tokens --loop)."
    ),
    "refresh_overdue.recovered": _("refresh_tokens finished a run at %(last_at)s."),
    "test.test": _("%(actor)s sent this test alert to the channel %(channel)s: it works."),
}
GROUP_SUBJECT = ngettext_lazy("%(count)d alert", "%(count)d alerts", "count")


def _code(alert):
    state = "soon" if alert.kind == "credential_expiry" and alert.state != "expired" else alert.state
    return f"{alert.kind}.{state}"


def alert_subject(alert):
    return render(_code(alert), alert.params, catalogue=SUBJECTS)


def alert_text(alert):
    """The alert's message: what happened, the advice for its error, and where to look."""
    lines = [render(_code(alert), alert.params, catalogue=TEXTS)]
    error = alert.params.get("error")
    if error:
        advice = advice_for(code=error.get("provider_code", "") if isinstance(error, dict) else "",
                            text=facts_text(error), google_testing=alert.params.get("google_testing", False))
        if advice:
            lines.append(gettext("Cause: %(cause)s") % {"cause": advice.cause})
            lines.append(gettext("What to do: %(fix)s") % {"fix": advice.fix})
    url = alert_url(alert)
    if url:
        lines.append(url)
    return "\n".join(lines)


def alert_url(alert):
    base = settings.OAUTHMAIL_BASE_URL.rstrip("/")
    if not base:
        return ""
    if "account_id" in alert.params:
        return base + reverse("admin:accounts_account_change", args=[alert.params["account_id"]])
    if "application_id" in alert.params:
        return base + reverse("admin:providers_application_change", args=[alert.params["application_id"]])
    return base + reverse("admin:index")
