"""The advice table (providers/advice.py): each common error, found in the words providers and servers
really send, maps to its cause and its fix."""
import pytest

from providers.advice import advice_for

CASES = [
    # (what the error says, the entry expected)
    ("AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2026-01-02 "
     "and was inactive for 90.00:00:00.", "AADSTS700082"),
    ("AADSTS7000222: The provided client secret keys for app 'x' are expired.", "AADSTS7000222"),
    ("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client "
     "secret value, not the client secret ID", "AADSTS7000215"),
    ("AADSTS70043: The refresh token has expired or is invalid due to sign-in frequency checks by conditional "
     "access.", "AADSTS70043"),
    ("AADSTS65001: The user or administrator has not consented to use the application", "AADSTS65001"),
    ("AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or "
     "'client_secret'.", "AADSTS7000218"),
    ("AADSTS50011: The redirect URI specified in the request does not match", "AADSTS50011"),
    ("AADSTS54005: OAuth2 Authorization code was already redeemed", "AADSTS54005"),
    ("AADSTS50173: The provided grant has expired due to it being revoked", "AADSTS50173"),
    ("AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor "
     "authentication", "AADSTS50076"),
    ("AADSTS50079: Due to a configuration change made by your administrator, you must enroll in multi-factor "
     "authentication", "AADSTS50079"),
    ("AADSTS53003: Access has been blocked by Conditional Access policies.", "AADSTS53003"),
    ("AADSTS700016: Application with identifier 'x' was not found in the directory 'contoso'.", "AADSTS700016"),
    ("AADSTS90002: Tenant 'contoso.onmicrosft.com' not found.", "AADSTS90002"),
    ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
     "SMTP 5.7.139"),
    ("535 5.7.3 Authentication unsuccessful [PR3P191CA0012.EURP191.PROD.OUTLOOK.COM]", "SMTP 5.7.3"),
    ("NO AUTHENTICATE failed.", "IMAP AUTHENTICATE failed"),
    ("invalid_grant: Token has been expired or revoked.", "invalid_grant"),
    ("Google refused this client for this grant. Client is unauthorized to retrieve access tokens using this "
     "method (unauthorized_client)", "unauthorized_client"),
    ("Access blocked: admin_policy_enforced", "admin_policy_enforced"),
]


@pytest.mark.parametrize(("text", "key"), CASES)
def test_common_errors_have_advice(text, key):
    advice = advice_for(text=text)
    assert advice is not None and advice.key == key
    assert advice.cause and advice.fix


def test_the_providers_code_wins_over_the_words():
    assert advice_for(code="AADSTS7000222", text="Microsoft refused the application's credentials").key == (
        "AADSTS7000222")


def test_a_google_testing_app_gets_its_own_advice_for_an_expired_grant():
    advice = advice_for(code="invalid_grant", text="Token has been expired or revoked.", google_testing=True)
    assert advice.key == "google_testing" and "Publish" in str(advice.fix)


def test_an_unknown_error_has_no_advice():
    assert advice_for(code="AADSTS99999", text="Something else went wrong.") is None

