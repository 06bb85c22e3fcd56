"""Bearer tokens for the publisher: JWTs (PyJWT) signed with a key the service holds, carrying roles.

The shape follows OAuth2 client credentials: a caller presents ``Authorization: Bearer <jwt>``
whose ``sub`` names the client and whose ``roles`` claim lists what it may do. HS256 uses one
shared secret; RS256 verifies with the service's public key, and only the issuer holds the
private key. Required claims (RFC 7519), each checked:

- ``iss``: who issued it, one the publisher trusts (a token minted elsewhere with the same key,
  say for another system, is refused);
- ``aud``: which publisher it is for, so a token for one service does not open another's data;
- ``exp`` and ``iat``: a token without an expiry would be valid forever once leaked, and one whose
  ``exp - iat`` passes the publisher's maximum lifetime is refused even while unexpired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt

Algorithm = Literal["HS256", "RS256"]
DEFAULT_ISSUER = "tooltune"


@dataclass(frozen=True)
class TokenRules:
    """What a publisher requires of a token besides its signature."""

    issuer: str = DEFAULT_ISSUER
    audience: str = ""
    max_lifetime_s: float = 86_400.0


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


def issue_token(key: str, *, subject: str, roles: list[str], audience: str | list[str], issuer: str = DEFAULT_ISSUER,
                ttl_s: float = 3600, algorithm: Algorithm = "HS256", now: float | None = None) -> str:
    """A signed token for ``subject`` with ``roles``, for the publisher of service ``audience`` (or
    of each service in a list), valid for ``ttl_s`` seconds.

    ``key`` is the HS256 secret, or for RS256 the PEM private key."""
    issued = int(now if now is not None else time.time())
    claims = {"iss": issuer, "aud": list(audience) if isinstance(audience, list) else audience, "sub": subject, "roles": list(roles), "iat": issued,
              "exp": issued + int(ttl_s)}
    return jwt.encode(claims, key, algorithm=algorithm)


def verify_token(authorization: str | None, key: str, algorithm: Algorithm, rules: TokenRules) -> Caller:
    """The caller of an ``Authorization`` header value; raises :class:`AuthFailure` (401) when the
    header is missing or the token is malformed, expired, not signed with ``key``, or breaks
    ``rules`` (issuer, audience, lifetime)."""
    if not authorization:
        raise AuthFailure(401, "unauthenticated", "missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailure(401, "unauthenticated", "Authorization must be 'Bearer <token>'")
    try:
        claims = jwt.decode(token.strip(), key, algorithms=[algorithm], issuer=rules.issuer, audience=rules.audience,
                            options={"require": ["exp", "iat", "sub", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise AuthFailure(401, "unauthenticated", "token expired; request a new one") from None
    except jwt.InvalidSignatureError:
        raise AuthFailure(401, "unauthenticated", "token signature does not verify (tampered, or signed with another key)") from None
    except jwt.InvalidIssuerError:
        raise AuthFailure(401, "unauthenticated", f"token issuer (iss) is not {rules.issuer!r}, the one this publisher trusts") from None
    except jwt.InvalidAudienceError:
        raise AuthFailure(401, "unauthenticated", f"token audience (aud) is not {rules.audience!r}; "
                                                  "request a token for this service") from None
    except jwt.MissingRequiredClaimError as e:
        raise AuthFailure(401, "unauthenticated", f"invalid token: it has no {e.claim!r} claim (iss, aud, sub, iat "
                                                  "and exp are required)") from None
    except jwt.InvalidTokenError as e:
        raise AuthFailure(401, "unauthenticated", f"invalid token: {e}") from None
    lifetime = claims["exp"] - claims["iat"]
    if lifetime > rules.max_lifetime_s:
        raise AuthFailure(401, "unauthenticated", f"token lifetime (exp - iat) is {lifetime:g} s, over this publisher's "
                                                  f"maximum of {rules.max_lifetime_s:g} s; request a shorter-lived token")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthFailure(401, "unauthenticated", "invalid token: the roles claim must be a list of strings")
    return Caller(subject=str(claims["sub"]), roles=tuple(roles))


def require_role(caller: Caller, role: str) -> None:
    """Raise :class:`AuthFailure` (403) unless ``caller`` has ``role``."""
    if role not in caller.roles:
        held = ", ".join(caller.roles) or "none"
        raise AuthFailure(403, "forbidden", f"role {role!r} required to read this data; the token has: {held}")
