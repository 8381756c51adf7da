"""Find a resident by phone: one stored form (E.164), any written form searched, the local form shown.

Cases store the resident's phone in E.164 (``commands.e164``: ``+8613912345678``, a Beijing landline
``+861012345678``). A search is normalised the same way: a whole number, however written
(``139 1234 5678``, ``+86 139…``, ``0086…``, ``010-12345678``), becomes that E.164 form and matches
exactly; a few digits match anywhere in the national number (the trunk ``0`` and the country code
``86`` are dropped first, as E.164 has neither).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from .commands import e164

#: Fewer digits than this are no phone search (a case number, a name, a year).
MIN_DIGITS = 4
#: What a phone written by a person may contain besides digits.
_PHONE_TEXT = re.compile(r"^\+?[\d\s\-().]+$")


@dataclass(frozen=True)
class PhoneQuery:
    """A phone search: the whole number in E.164, or the digits to find inside stored numbers."""

    #: The number in E.164 when the text is a whole valid number; None for partial digits.
    exact: str | None
    #: The national digits searched for (no country code, no trunk 0).
    digits: str

    @property
    def pattern(self) -> str:
        """Return the LIKE pattern finding the digits inside a stored E.164 number."""
        return f"%{self.digits}%"


def phone_query(text: str) -> PhoneQuery | None:
    """Return the phone search ``text`` means, or None when it is no phone (too few digits, letters)."""
    text = (text or "").strip()
    if not text or len(text) > 40 or not _PHONE_TEXT.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if text.startswith("+86"):
        digits = digits[2:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if digits.startswith("0"):
        digits = digits[1:]  # the trunk prefix of a landline's area code: E.164 has none
    if len(digits) < MIN_DIGITS:
        return None
    return PhoneQuery(e164(text) if len(digits) >= 7 else None, digits)


def local_phone(stored: str | None) -> str:
    """Show a stored E.164 number as people write it here: ``139 1234 5678``, ``010 1234 5678``."""
    if not stored:
        return ""
    try:
        number = phonenumbers.parse(stored, "CN")
    except phonenumbers.NumberParseException:
        return stored
    if number.country_code != 86:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


__all__ = ["MIN_DIGITS", "PhoneQuery", "local_phone", "phone_query"]
