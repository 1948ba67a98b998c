from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class LoyaltySettings(ServiceSettings):
    service_name: ClassVar[str] = "loyalty"
    model_config = service_config("loyalty")

    #: How often the sweeps look for accounts with points to release, expire or remind of,
    #: and for tiers to warn about or evaluate.
    sweep_interval_seconds: float = 30.0
    #: The coupon service, for exchanging points for coupons.
    coupon_base_url: str = "http://127.0.0.1:8104"
    #: Seconds a call to the coupon service may take, and how many times a transport error
    #: is retried (with the same reference: the coupon service answers a repeat the same).
    coupon_timeout_seconds: float = 5.0
    coupon_attempts: int = 3
