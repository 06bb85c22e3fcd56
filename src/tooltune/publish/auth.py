"""Bearer tokens for the publisher: JWTs (PyJWT) signed with a key the service holds, carrying roles.

The shape follows OAuth2 client credentials: a caller presents ``Authorization: Bearer <jwt>``
whose ``sub`` names the client and whose ``roles`` claim lists what it may do. HS256 uses one
shared secret; RS256 verifies with the service's public key, and only the issuer holds the
private key. ``exp`` is required: a token without an expiry would be valid forever once leaked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt

Algorithm = Literal["HS256", "RS256"]


@dataclass(frozen=True)
class Caller:
    """Who a valid token says is calling."""

    subject: str
    roles: tuple[str, ...]


class AuthFailure(Exception):
    """Why a request is refused: HTTP status, audit outcome, and a message for the caller."""

    def __init__(self, status: int, outcome: str, detail: str):
        super().__init__(detail)
        self.status, self.outcome, self.detail = status, outcome, detail


def issue_token(key: str, *, subject: str, roles: list[str], ttl_s: float = 3600, algorithm: Algorithm = "HS256",
                now: float | None = None) -> str:
    """A signed token for ``subject`` with ``roles``, valid for ``ttl_s`` seconds.

    ``key`` is the HS256 secret, or for RS256 the PEM private key."""
    issued = int(now if now is not None else time.time())
    claims = {"sub": subject, "roles": list(roles), "iat": issued, "exp": issued + int(ttl_s)}
    return jwt.encode(claims, key, algorithm=algorithm)


def verify_token(authorization: str | None, key: str, algorithm: Algorithm) -> Caller:
    """The caller of an ``Authorization`` header value; raises :class:`AuthFailure` (401) when the
    header is missing or the token is malformed, expired or not signed with ``key``."""
    if not authorization:
        raise AuthFailure(401, "unauthenticated", "missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailure(401, "unauthenticated", "Authorization must be 'Bearer <token>'")
    try:
        claims = jwt.decode(token.strip(), key, algorithms=[algorithm], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise AuthFailure(401, "unauthenticated", "token expired; request a new one") from None
    except jwt.InvalidSignatureError:
        raise AuthFailure(401, "unauthenticated", "token signature does not verify (tampered, or signed with another key)") from None
    except jwt.InvalidTokenError as e:
        raise AuthFailure(401, "unauthenticated", f"invalid token: {e}") from None
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthFailure(401, "unauthenticated", "invalid token: the roles claim must be a list of strings")
    return Caller(subject=str(claims["sub"]), roles=tuple(roles))


def require_role(caller: Caller, role: str) -> None:
    """Raise :class:`AuthFailure` (403) unless ``caller`` has ``role``."""
    if role not in caller.roles:
        held = ", ".join(caller.roles) or "none"
        raise AuthFailure(403, "forbidden", f"role {role!r} required to read this data; the token has: {held}")
