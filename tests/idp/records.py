"""What the test identity provider hands out and remembers: grants, codes, tokens, failures."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    """What a user (``email``; None for app-only tokens) let a client do."""

    client_id: str
    email: str | None
    scope: str
    offline: bool = False  # whether a refresh token comes with the first access token
    nonce: str | None = None  # echoed in the ID token


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    grant: Grant  # its email is filled in by approve()
    expires_at: float
    interval: int
    status: str = "pending"  # pending | approved | declined | expired | redeemed
    last_poll: float | None = None


@dataclass
class AuthorizationCode:
    grant: Grant
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    redeemed: bool = False


@dataclass
class RefreshToken:
    grant: Grant
    status: str = "live"  # live | used (rotated away) | revoked


@dataclass(frozen=True)
class Tokens:
    """A successful token answer; ``grant`` describes its access token."""

    grant: Grant
    access_token: str
    expires_in: int
    refresh_token: str | None


@dataclass(frozen=True)
class Failure:
    status: int
    retry_after: int | str | None
    body: dict | str | None
    location: str | None = None
