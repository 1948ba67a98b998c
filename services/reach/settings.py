from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class ReachSettings(ServiceSettings):
    service_name: ClassVar[str] = "reach"
    model_config = service_config("reach")
