from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class CustomerSettings(ServiceSettings):
    service_name: ClassVar[str] = "customer"
    model_config = service_config("customer")

    #: Keys that encrypt personal data at rest, by key id, base64 of 32 bytes
    #: (CUSTOMER_PII_KEYS='{"k1": "..."}'). Empty: one key derived from the secret key.
    pii_keys: dict[str, str] = {}
    #: The key new values are sealed with; older keys still open what they sealed.
    pii_active_key: str = ""
    #: Base64 of 32 bytes keying the blind index (exact lookup of mobile, email, ID number).
    #: Changing it makes existing indexes unusable: set it once.
    blind_index_key: str = ""
    #: How long behaviour events are kept (a TTL index; changing it on an existing
    #: database needs a collMod of the index).
    behaviour_retention_days: int = 180
    #: How long a merge can be undone.
    unmerge_window_days: int = 30
