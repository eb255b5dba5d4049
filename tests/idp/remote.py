"""``RemoteIdentityProvider``: the control API of a test identity provider running in another
process (``python -m tests.idp``), with the same method names as ``TestIdentityProvider``."""
import requests


class RemoteControlError(RuntimeError):
    """The provider refused a control call (unknown method, bad arguments, no such user code ...)."""


class RemoteIdentityProvider:
    def __init__(self, url, ca_bundle, timeout=10):
        self.url = url.rstrip("/")
        self.ca_bundle = str(ca_bundle)
        self.timeout = timeout
        self._session = requests.Session()

    def _call(self, name, **kwargs):
        # verify= per request: requests lets REQUESTS_CA_BUNDLE override Session.verify, not this.
        response = self._session.post(f"{self.url}/_control/{name}", json=kwargs, verify=self.ca_bundle,
                                      timeout=self.timeout)
        body = response.json()
        if response.status_code != 200:
            raise RemoteControlError(f"{name}: {body.get('error')}: {body.get('message')}")
        return body["result"]

    def close(self):
        self._session.close()

    def reset(self):
        return self._call("reset")

    def set(self, **settings):
        """E.g. ``set(latency=0.05, device_interval=0)``."""
        return self._call("set", **settings)

    def stats(self) -> dict:
        """``{"token_requests": <count>, "refresh_token_reuse": <count>}``"""
        return self._call("stats")

    def add_client(self, client_id, secret=None, certificate_pem=None, service_account_public_key_pem=None,
                   delegated_scopes=None):
        return self._call("add_client", client_id=client_id, secret=secret, certificate_pem=certificate_pem,
                          service_account_public_key_pem=service_account_public_key_pem,
                          delegated_scopes=delegated_scopes)

    def approve(self, user_code, email):
        return self._call("approve", user_code=user_code, email=email)

    def decline(self, user_code):
        return self._call("decline", user_code=user_code)

    def expire(self, user_code):
        return self._call("expire", user_code=user_code)

    def pending_user_codes(self) -> list[str]:
        return self._call("pending_user_codes")

    def issue_refresh_token(self, client_id, email, scope="openid profile offline_access") -> str:
        return self._call("issue_refresh_token", client_id=client_id, email=email, scope=scope)

    def revoke(self, email, access_tokens=False) -> int:
        return self._call("revoke", email=email, access_tokens=access_tokens)

    def fail_next(self, count, status=503, retry_after=None, body=None, location=None):
        return self._call("fail_next", count=count, status=status, retry_after=retry_after, body=body,
                          location=location)

    def deny_next_sign_in(self):
        return self._call("deny_next_sign_in")

    def valid_access_token(self, token) -> dict | None:
        return self._call("valid_access_token", token=token)

    @property
    def token_requests(self) -> list[dict]:
        return self._call("token_requests")

    @property
    def refresh_token_reuse(self) -> int:
        return self._call("refresh_token_reuse")
