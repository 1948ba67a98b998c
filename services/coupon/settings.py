from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class CouponSettings(ServiceSettings):
    service_name: ClassVar[str] = "coupon"
    model_config = service_config("coupon")
