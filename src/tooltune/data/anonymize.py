"""Replace personal data in production-derived records before they become training data.

Emails, phone numbers and card numbers (13-19 digits, Luhn-checked, spaces or dashes allowed)
are found by pattern, plus any extra patterns the config adds. Each distinct value gets a
numbered replacement that is stable within one record: the same address in the user's message,
in a later turn and in a call argument becomes the same ``user1@example.com``, so the example
still teaches the model to copy the value from the conversation into the call.

The default replacements are values a schema still accepts (an email placeholder is a valid
address at the reserved ``example.com`` domain, a phone placeholder is a fictional ``555-01xx``
number), because anonymized call arguments must still validate. One replacement serves text and
arguments alike: ``<EMAIL_1>`` in the message but ``user1@example.com`` in the call would teach
the model to invent addresses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, field_validator

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# Digits with optional single space/dash separators; length and Luhn are checked after matching.
_CARD = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![\w-])")
# International (+CC) or grouped national numbers: "+1 (415) 555-0132", "415-555-0132",
# "+44 20 7946 0958", "+4915112345678". A plain run of digits needs the "+": without one it is
# as likely an order number or an amount.
_PHONE = re.compile(
    r"(?<![\w+-])(?:\+\d{7,15}|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4})(?![\w:-]|[.,]\d)"
)
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{4}$")


class ExtraPattern(BaseModel):
    """A team-specific kind of personal data, e.g. account numbers."""

    name: str = Field(description='Kind name; also the counter the replacement numbers by, e.g. "ACCOUNT".')
    regex: str = Field(description="Python regular expression matching one value.")
    replacement: str = Field("", description='Replacement with {n} for the number; default "<NAME_{n}>".')

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"regex {value!r} does not compile: {e}; fix the pattern") from e
        return value

    @field_validator("replacement")
    @classmethod
    def _template(cls, value: str) -> str:
        return _check_template(value) if value else value


class AnonymizerConfig(BaseModel):
    """What to replace in production logs and corrections, and with what."""

    emails: bool = Field(True, description="Replace email addresses.")
    phones: bool = Field(True, description="Replace phone numbers (international +CC form, or grouped digits).")
    cards: bool = Field(True, description="Replace payment card numbers (13-19 digits passing the Luhn check).")
    email_replacement: str = Field("user{n}@example.com", description="Replacement for the n-th distinct email.")
    phone_replacement: str = Field("+1-555-01{n:02d}", description="Replacement for the n-th distinct phone number.")
    card_replacement: str = Field("<CARD_{n}>", description="Replacement for the n-th distinct card number.")
    extra_patterns: list[ExtraPattern] = Field(default_factory=list, description="More kinds to replace; applied first.")

    @field_validator("email_replacement", "phone_replacement", "card_replacement")
    @classmethod
    def _template(cls, value: str) -> str:
        return _check_template(value)


def _check_template(value: str) -> str:
    try:
        value.format(n=1)
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"replacement {value!r} is not a template: use {{n}} for the number (got {e!r})") from e
    return value


class Anonymizer:
    """Applies an :class:`AnonymizerConfig`; one :meth:`scrub` call is one record."""

    def __init__(self, config: AnonymizerConfig | None = None):
        self.config = config or AnonymizerConfig()
        c = self.config
        # (kind, pattern, replacement template, key normalising a match, accept-match check)
        self._kinds: list[tuple[str, re.Pattern[str], str, Callable[[str], str], Callable[[str], bool]]] = [
            (p.name, re.compile(p.regex), p.replacement or f"<{p.name.upper()}_{{n}}>", str, _always)
            for p in c.extra_patterns
        ]
        if c.emails:
            self._kinds.append(("email", _EMAIL, c.email_replacement, str.lower, _always))
        if c.cards:
            self._kinds.append(("card", _CARD, c.card_replacement, _digits, _is_card))
        if c.phones:
            self._kinds.append(("phone", _PHONE, c.phone_replacement, _digits, _is_phone))

    def scrub(self, value: Any) -> Any:
        """A copy of ``value`` (any JSON value) with personal data replaced in every string.

        Numbering starts at 1 for each call, and a value seen twice within the call gets the
        same replacement, so pass one whole record (all its turns and calls) per call."""
        seen: dict[str, dict[str, str]] = {}
        return self._walk(value, seen)

    def _walk(self, value: Any, seen: dict[str, dict[str, str]]) -> Any:
        if isinstance(value, str):
            return self._text(value, seen)
        if isinstance(value, dict):
            return {k: self._walk(v, seen) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, seen) for v in value]
        return value

    def _text(self, text: str, seen: dict[str, dict[str, str]]) -> str:
        for kind, pattern, template, key, accept in self._kinds:
            mapping = seen.setdefault(kind, {})

            def replace(m: re.Match[str]) -> str:
                if not accept(m.group(0)):
                    return m.group(0)
                k = key(m.group(0))
                if k not in mapping:
                    mapping[k] = template.format(n=len(mapping) + 1)
                return mapping[k]

            text = pattern.sub(replace, text)
        return text


def _always(_: str) -> bool:
    return True


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _is_card(text: str) -> bool:
    digits = _digits(text)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _is_phone(text: str) -> bool:
    digits = _digits(text)
    if not 7 <= len(digits) <= 15 or _DATE_LIKE.match(text.strip()):
        return False
    # Grouped digits without "+" or parentheses must look like a phone's groups (3-3-4, 2-4-4,
    # 3-4-4 ...), not a thousands-separated amount such as "1 250 000".
    if text.startswith("+") or "(" in text:
        return True
    groups = re.split(r"[ .-]", text)
    return not all(len(g) == 3 for g in groups[1:])


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (ISO/IEC 7812)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
