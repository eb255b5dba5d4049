"""A test OAuth2 / OpenID Connect identity provider imitating Microsoft Entra ID and Google.

It serves real HTTPS on 127.0.0.1 (certificate from a throwaway ``trustme`` CA), so the
suite runs the real msal / google-auth code without talking to the internet::

    idp = TestIdentityProvider().start()
    app = msal.PublicClientApplication("app-id", authority=f"{idp.url}/common", instance_discovery=False)

Another process can run it (``python -m tests.idp --port 0 --state-dir DIR``) and drive it
with ``RemoteIdentityProvider``. See server.py for the endpoints and state.py for the API.
"""
from .remote import RemoteIdentityProvider
from .server import TestIdentityProvider

__all__ = ["RemoteIdentityProvider", "TestIdentityProvider"]
