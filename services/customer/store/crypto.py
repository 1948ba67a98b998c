"""Personal data at rest: AES-GCM encryption with key ids (for rotation) and a keyed blind
index (HMAC-SHA256) so exact lookups work without decrypting anything."""

from __future__ import annotations

import base64
import hashlib
import hmac

from servicekit.sealing import Sealer, derive_key
from services.customer.settings import CustomerSettings

__all__ = ["PersonalDataVault", "derive_key"]


class PersonalDataVault(Sealer):
    """Seals values with the active key; opens values sealed with any known key (the kit's
    `Sealer`). The additional data binds a ciphertext to its tenant, customer and field, so
    a sealed value copied into another document does not open."""

    def __init__(self, keys: dict[str, bytes], active_key_id: str, index_key: bytes) -> None:
        super().__init__(keys, active_key_id)
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

    def blind_index(self, kind: str, tenant: str, value: str) -> str:
        message = f"{kind}\x1f{tenant}\x1f{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()[:40]
