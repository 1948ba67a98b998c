"""Redeem codes (兑换码): their alphabet, check character and keyed digest. Pure: no I/O.

A code is 14 random symbols and one check symbol from a 29-symbol alphabet (Crockford's
base32 without 0, 1 and Z, which read as O, I/L and 2): about 68 bits of chance, so
guessing one of even a million live codes takes ~10^14 tries. The check symbol makes

    sum((i + 1) * value(symbol_i) for every symbol, check included) == 0  (mod 29)

and 29 is prime with every weight in 1..15 distinct and non-zero, so any single wrong
symbol and any swap of two neighbouring different symbols breaks the sum: a typo is
refused before the store is asked. The store keeps only an HMAC of the code under the
service's secret: the codes cannot be read back from it, only checked."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXY"
MODULUS = len(ALPHABET)  # 29, a prime
BODY_LENGTH = 14
LENGTH = BODY_LENGTH + 1
GROUP = 5
_VALUE = {symbol: i for i, symbol in enumerate(ALPHABET)}
_BODIES = MODULUS**BODY_LENGTH
_SEPARATORS = re.compile(r"[\s\-]")

assert MODULUS == 29 and LENGTH < MODULUS


class MistypedCode(ValueError):
    """Not a code: wrong length, a symbol outside the alphabet, or a wrong check symbol."""


def _weighted(symbols: str) -> int:
    return sum((i + 1) * _VALUE[s] for i, s in enumerate(symbols)) % MODULUS


def check_symbol(body: str) -> str:
    """The symbol that brings the weighted sum of `body` + it to 0 mod 29."""
    weight = len(body) + 1
    # weight * c == -sum (mod p): c = -sum * weight^-1
    value = (-_weighted(body) * pow(weight, -1, MODULUS)) % MODULUS
    return ALPHABET[value]


def is_well_formed(code: str) -> bool:
    return len(code) == LENGTH and all(s in _VALUE for s in code) and _weighted(code) == 0


def new_code() -> str:
    """A fresh code from the operating system's randomness (`secrets`)."""
    n = secrets.randbelow(_BODIES)
    symbols = []
    for _ in range(BODY_LENGTH):
        n, value = divmod(n, MODULUS)
        symbols.append(ALPHABET[value])
    body = "".join(symbols)
    return body + check_symbol(body)


def normalize(raw: str) -> str:
    """The code as typed (any case, spaces or dashes between groups) -> its canonical form;
    MistypedCode when it cannot be one."""
    code = _SEPARATORS.sub("", raw).upper()
    if not is_well_formed(code):
        raise MistypedCode(raw)
    return code


def display(code: str) -> str:
    """Grouped for people: XXXXX-XXXXX-XXXXX."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def code_key(secret: str) -> bytes:
    """The key codes are digested under, derived from the service's secret so the secret
    itself never touches a code."""
    return hmac.new(secret.encode(), b"coupon.redeem-codes.v1", hashlib.sha256).digest()


def digest(key: bytes, tenant: str, code: str) -> str:
    """What the store keeps of a code: HMAC-SHA256 over tenant and code (the same code in two
    tenants is two entries)."""
    message = f"{tenant}\x1f{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]
