"""Bearer tokens and basic auth, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class Credentials:
    tokens: tuple[str, ...]
    basic_users: tuple[tuple[str, str], ...]
    allow_unauthenticated: bool

    @property
    def configured(self) -> bool:
        return bool(self.tokens or self.basic_users)

    def allows(self, authorization: str | None, x_auth_token: str | None = None) -> bool:
        if self.allow_unauthenticated and not self.configured:
            return True
        presented_token = None
        if authorization and authorization[:7].lower() == "bearer ":
            presented_token = authorization[7:].strip()
        elif x_auth_token:
            presented_token = x_auth_token.strip()
        if presented_token is not None:
            return _any_equal(presented_token, self.tokens)
        if authorization and authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, sep, password = decoded.partition(":")
            if not sep:
                return False
            matched = False
            for known_user, known_password in self.basic_users:
                # Evaluate every entry so timing does not reveal which user exists.
                user_ok = hmac.compare_digest(user.encode(), known_user.encode())
                password_ok = hmac.compare_digest(password.encode(), known_password.encode())
                matched |= user_ok and password_ok
            return matched
        return self.allow_unauthenticated


def _any_equal(presented: str, known: tuple[str, ...]) -> bool:
    matched = False
    for token in known:
        matched |= hmac.compare_digest(presented.encode(), token.encode())
    return matched
