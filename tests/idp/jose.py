"""Just enough JOSE (JWT/JWS/JWK) for the test identity provider.

The provider signs its own ID tokens with RS256 and verifies the JWTs clients send it:
RFC 7523 client assertions (msal signs them with RS256 + ``x5t`` or PS256 + ``x5t#S256``)
and Google service-account grant assertions (RS256). Built on ``cryptography`` alone, so
the provider does not depend on the JWT library of the code under test.
"""
import base64
import hashlib
import json

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class InvalidJWT(ValueError):
    """The token is malformed, uses an unsupported algorithm, or its signature does not verify."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_part(obj: dict) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


_PADDINGS = {
    "RS256": lambda: padding.PKCS1v15(),
    # RFC 7518 section 3.5: the PSS salt is as long as the hash output.
    "PS256": lambda: padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
}


def sign(claims: dict, private_key: rsa.RSAPrivateKey, algorithm: str = "RS256", headers=None) -> str:
    """Return a compact JWS of ``claims`` signed with ``private_key`` (RS256 or PS256)."""
    header = {"alg": algorithm, "typ": "JWT", **(headers or {})}
    signing_input = f"{_json_part(header)}.{_json_part(claims)}"
    signature = private_key.sign(signing_input.encode("ascii"), _PADDINGS[algorithm](), hashes.SHA256())
    return f"{signing_input}.{b64url_encode(signature)}"


def decode_unverified(token: str) -> tuple[dict, dict]:
    """Return (header, claims) without checking the signature."""
    try:
        header, claims, _ = token.split(".")
        return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJWT(f"not a JWT: {exc}") from None


def verify(token: str, public_key) -> tuple[dict, dict]:
    """Return (header, claims) if ``token`` is RS256/PS256-signed by ``public_key``."""
    header, claims = decode_unverified(token)
    algorithm = header.get("alg")
    if algorithm not in _PADDINGS:
        raise InvalidJWT(f"unsupported algorithm {algorithm!r}")
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise InvalidJWT("the registered key is not an RSA key")
    signing_input, _, signature = token.rpartition(".")
    try:
        public_key.verify(
            b64url_decode(signature), signing_input.encode("ascii"), _PADDINGS[algorithm](), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        raise InvalidJWT("signature does not verify") from None
    return header, claims


def certificate_thumbprints(certificate: x509.Certificate) -> dict[str, str]:
    """The ``x5t`` (SHA-1) and ``x5t#S256`` JWS header values that identify ``certificate``."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return {
        "x5t": b64url_encode(hashlib.sha1(der).digest()),
        "x5t#S256": b64url_encode(hashlib.sha256(der).digest()),
    }


def to_bytes(pem: str | bytes) -> bytes:
    return pem.encode("ascii") if isinstance(pem, str) else pem


def load_public_key(pem: str | bytes):
    """The public key of a PEM certificate or of a PEM ``PUBLIC KEY``."""
    data = to_bytes(pem)
    if b"CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return serialization.load_pem_public_key(data)


class SigningKey:
    """The provider's own RSA key: signs ID tokens and is published as a JWK set."""

    def __init__(self):
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.private_key.public_key().public_numbers()
        self._jwk = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "n": b64url_encode(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url_encode(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }
        self.kid = b64url_encode(hashlib.sha256(self._jwk["n"].encode("ascii")).digest()[:15])
        self._jwk["kid"] = self.kid

    def sign(self, claims: dict) -> str:
        return sign(claims, self.private_key, "RS256", {"kid": self.kid})

    def jwks(self) -> dict:
        return {"keys": [dict(self._jwk)]}
