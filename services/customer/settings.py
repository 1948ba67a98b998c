from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class CustomerSettings(ServiceSettings):
    service_name: ClassVar[str] = "customer"
    model_config = service_config("customer")
