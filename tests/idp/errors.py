"""The OAuth error answers of the test identity provider, worded for both dialects.

State and endpoint code raise ``OAuthError``; microsoft.py renders it the way Entra ID does
(``AADSTS<code>: <description>`` plus ``error_codes``, ``trace_id`` ...), google.py the way
Google does (``{"error": ..., "error_description": <google>}``).
"""


class OAuthError(Exception):
    """An OAuth error answer: ``description`` is Entra's wording (after ``AADSTS<aadsts>:``),
    ``google`` the ``error_description`` Google gives for the same problem."""

    def __init__(self, error, description, *, aadsts=None, google="Bad Request", status=400):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.aadsts = aadsts
        self.google = google
        self.status = status


def invalid_request(aadsts, description):
    return OAuthError("invalid_request", description, aadsts=aadsts)


def invalid_grant(aadsts, description, google="Bad Request"):
    return OAuthError("invalid_grant", description, aadsts=aadsts, google=google)


def invalid_client(aadsts, description, google="Unauthorized"):
    return OAuthError("invalid_client", description, aadsts=aadsts, google=google, status=401)


def missing_parameter(name):
    """Entra's answer to a request without a required parameter."""
    return invalid_request(900144, f"The request body must contain the following parameter: '{name}'.")
