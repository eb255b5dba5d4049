"""Registered applications, and how a token request proves it comes from one.

Imitates Entra ID's client authentication: a public client sends only ``client_id``; a
confidential client sends ``client_secret`` (in the body or HTTP Basic) or an RFC 7523
``client_assertion`` signed with the private key of a registered certificate, named by
its ``x5t`` (SHA-1, RS256) or ``x5t#S256`` (SHA-256, PS256) thumbprint.
"""
import secrets
import time
from dataclasses import dataclass

from cryptography import x509

from . import jose
from .errors import invalid_client

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300  # seconds of clock difference tolerated in assertions


@dataclass
class Client:
    client_id: str
    secret: str | None = None
    certificate_public_key: object = None
    certificate_thumbprints: dict | None = None  # {"x5t": ..., "x5t#S256": ...}
    service_account_public_key: object = None  # a Google service account's key; client_id is its email
    delegated_scopes: frozenset | None = None  # Google domain-wide delegation; None: any scope

    @classmethod
    def register(cls, client_id, secret=None, certificate_pem=None, service_account_public_key_pem=None,
                 delegated_scopes=None):
        client = cls(client_id, secret=secret)
        if certificate_pem:
            certificate = x509.load_pem_x509_certificate(jose.to_bytes(certificate_pem))
            client.certificate_public_key = certificate.public_key()
            client.certificate_thumbprints = jose.certificate_thumbprints(certificate)
        if service_account_public_key_pem:
            client.service_account_public_key = jose.load_public_key(service_account_public_key_pem)
        if delegated_scopes is not None:
            client.delegated_scopes = frozenset(delegated_scopes)
        return client

    @property
    def confidential(self) -> bool:
        return self.secret is not None or self.certificate_public_key is not None

    def authenticate(self, *, secret=None, assertion=None, assertion_type=None, audience=None, public_flow=False):
        """Raise ``OAuthError`` unless the request's credentials fit this client.
        ``audience`` is the URL of the token endpoint the request was sent to. ``public_flow``: a grant
        that Entra lets any app with "Allow public client flows" redeem without credentials (device code)."""
        if assertion:
            self._check_assertion(assertion, assertion_type, audience)
        elif secret is not None:
            if not self.confidential:
                raise invalid_client(
                    700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."
                )
            if not secrets.compare_digest(secret, self.secret or ""):
                raise invalid_client(
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                    f"secret value, not the client secret ID, for a secret added to app '{self.client_id}'.",
                )
        elif self.confidential and not public_flow:
            raise invalid_client(
                7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
            )

    def _check_assertion(self, assertion, assertion_type, audience):
        if assertion_type != CLIENT_ASSERTION_TYPE:
            raise invalid_client(50027, f"client_assertion_type must be '{CLIENT_ASSERTION_TYPE}'.")
        unregistered = invalid_client(
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        )
        if self.certificate_public_key is None:
            raise unregistered
        try:
            header, claims = jose.verify(assertion, self.certificate_public_key)
        except jose.InvalidJWT as exc:
            raise invalid_client(700027, f"Client assertion failed signature validation: {exc}.") from None
        # msal sends the thumbprint as base64url *with* padding; RFC 7515 says without.
        sent = {name: str(header.get(name, "")).rstrip("=") for name in self.certificate_thumbprints}
        if not any(sent[name] == value for name, value in self.certificate_thumbprints.items()):
            raise unregistered
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            raise invalid_client(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
        if claims.get("aud") != audience:
            raise invalid_client(50027, f"Invalid JWT token: the client assertion's audience must be '{audience}'.")
        now = time.time()
        if claims.get("exp", 0) < now - CLOCK_SKEW or claims.get("nbf", 0) > now + CLOCK_SKEW:
            raise invalid_client(700024, "Client assertion is not within its valid time range.")


def unknown_client(client_id):
    return invalid_client(
        700016,
        f"Application with identifier '{client_id}' was not found in the directory. This can happen if the "
        "application has not been installed by the administrator of the tenant or consented to by any user in the "
        "tenant. You may have sent your authentication request to the wrong tenant.",
        google="The OAuth client was not found.",
    )
