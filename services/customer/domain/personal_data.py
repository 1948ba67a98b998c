"""Personal data: how it is normalised (so lookups match) and masked (so answers and logs
do not reveal it to callers without the right)."""

from __future__ import annotations

import re

from servicekit.errors import InvalidInput

CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(\.[A-Za-z0-9\-]{1,63})+$")
CN_ID_NUMBER = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalize_mobile(raw: str, *, field: str = "mobile") -> str:
    """E.164. A bare 11-digit mainland number gets +86; spaces and dashes are ignored."""
    digits = re.sub(r"[\s\-()]", "", raw)
    if CN_MOBILE.fullmatch(digits):
        return "+86" + digits
    if digits.startswith("0086"):
        digits = "+" + digits[2:]
    if E164.fullmatch(digits) and (not digits.startswith("+86") or CN_MOBILE.fullmatch(digits[3:])):
        return digits
    raise InvalidInput("not a valid mobile number", field=field)


def normalize_email(raw: str, *, field: str = "email") -> str:
    email = raw.strip()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise InvalidInput("not a valid email address", field=field)
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def normalize_id_number(raw: str, *, field: str = "id_number") -> str:
    """A mainland resident ID (18 characters, with its check character)."""
    number = raw.strip().upper()
    if not CN_ID_NUMBER.fullmatch(number):
        raise InvalidInput("not a valid resident ID number", field=field)
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != number[17]:
        raise InvalidInput("the ID number's check character does not match", field=field)
    return number


def mask_mobile(mobile: str) -> str:
    return mobile[:-8] + "****" + mobile[-4:] if len(mobile) > 8 else "****"


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_id_number(number: str) -> str:
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_street(street: str) -> str:
    return street[:2] + "***" if len(street) > 2 else "***"


MASKS = {
    "mobile": mask_mobile,
    "email": mask_email,
    "id_number": mask_id_number,
    "address.street": mask_street,
}


def masked(field: str, value: object) -> object:
    """The value as a caller without the right to personal data sees it."""
    if value is None or field not in MASKS:
        return value
    return MASKS[field](str(value))
