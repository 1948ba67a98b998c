"""A service one test module runs on a real socket, with its own runtime at hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.runtime import Runtime
from servicekit.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


@dataclass
class RunningService(Generic[S]):
    url: str
    app: FastAPI
    settings: S

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    @property
    def db(self) -> AsyncDatabase[Any]:
        """The service's own database, through the service's own client."""
        return self.runtime.db

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap_servers
