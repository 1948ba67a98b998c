"""Secrets and personal data at rest: AES-GCM under keys named by id (so keys can rotate:
new values are sealed with the active key, older ones still open with theirs), each
ciphertext bound to a context (tenant, record, field) so a sealed value copied elsewhere
does not open. Keys come from settings, or in development are derived from the service's
secret key."""

from __future__ import annotations

import os
from typing import Any

from bson import Binary
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose from a longer-lived secret (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        secret.encode()
    )


class Sealer:
    """Seals with the active key; opens what any known key sealed."""

    def __init__(self, keys: dict[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise ValueError(f"the active sealing key {active_key_id!r} is not configured")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = active_key_id

    def seal(self, plaintext: str, *, context: str) -> dict[str, Any]:
        nonce = os.urandom(12)
        cipher = self._keys[self.active_key_id]
        sealed = cipher.encrypt(nonce, plaintext.encode(), context.encode())
        return {"k": self.active_key_id, "n": Binary(nonce), "c": Binary(sealed)}

    def open(self, sealed: dict[str, Any], *, context: str) -> str:
        """The plaintext; raises `cryptography.exceptions.InvalidTag` when the context or
        the ciphertext is not the one sealed."""
        cipher = self._keys[sealed["k"]]
        return cipher.decrypt(bytes(sealed["n"]), bytes(sealed["c"]), context.encode()).decode()

    def needs_rotation(self, sealed: dict[str, Any]) -> bool:
        return sealed["k"] != self.active_key_id
