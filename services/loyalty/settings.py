from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class LoyaltySettings(ServiceSettings):
    service_name: ClassVar[str] = "loyalty"
    model_config = service_config("loyalty")
