from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class TaggingSettings(ServiceSettings):
    service_name: ClassVar[str] = "tagging"
    model_config = service_config("tagging")
