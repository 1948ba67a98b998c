"""Personal data at rest: AES-GCM encryption with key ids (for rotation) and a keyed blind
index (HMAC-SHA256) so exact lookups work without decrypting anything."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from bson import Binary
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.customer.settings import CustomerSettings


def derive_key(secret: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        secret.encode()
    )


class PersonalDataVault:
    """Seals values with the active key; opens values sealed with any known key. The
    additional data binds a ciphertext to its tenant, customer and field, so a sealed
    value copied into another document does not open."""

    def __init__(self, keys: dict[str, bytes], active_key_id: str, index_key: bytes) -> None:
        if active_key_id not in keys:
            raise ValueError(f"the active personal-data key {active_key_id!r} is not configured")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = active_key_id
        self._index_key = index_key

    @classmethod
    def from_settings(cls, settings: CustomerSettings) -> PersonalDataVault:
        if settings.pii_keys:
            keys = {kid: base64.b64decode(key) for kid, key in settings.pii_keys.items()}
            active = settings.pii_active_key or sorted(keys)[-1]
        else:  # development: keys derived from the service secret
            keys, active = {"k0": derive_key(settings.secret_key, "pii:k0")}, "k0"
        index_key = (
            base64.b64decode(settings.blind_index_key)
            if settings.blind_index_key
            else derive_key(settings.secret_key, "pii:blind-index")
        )
        return cls(keys, active, index_key)

    def seal(self, plaintext: str, *, context: str) -> dict[str, Any]:
        nonce = os.urandom(12)
        cipher = self._keys[self.active_key_id]
        sealed = cipher.encrypt(nonce, plaintext.encode(), context.encode())
        return {"k": self.active_key_id, "n": Binary(nonce), "c": Binary(sealed)}

    def open(self, sealed: dict[str, Any], *, context: str) -> str:
        cipher = self._keys[sealed["k"]]
        return cipher.decrypt(bytes(sealed["n"]), bytes(sealed["c"]), context.encode()).decode()

    def blind_index(self, kind: str, tenant: str, value: str) -> str:
        message = f"{kind}\x1f{tenant}\x1f{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()[:40]

    def needs_rotation(self, sealed: dict[str, Any]) -> bool:
        return sealed["k"] != self.active_key_id
