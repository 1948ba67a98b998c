"""Typed events: one pydantic class per event type, versioned in its name.

A class declares `type` (`customer.registered.v1`, dotted past tense), its `topic`, and a
one-line docstring saying when it is sent. A breaking schema change gets a new class with
the next version suffix plus an upcaster from the old one, so old messages still read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from contracts.topics import Topic

_REGISTRY: dict[str, type[Event]] = {}
_UPCASTERS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {}


class Event(BaseModel):
    """Base of every event's `data`. Subclasses set `type` and `topic`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ClassVar[str]
    topic: ClassVar[Topic]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            if cls.type in _REGISTRY:
                raise ValueError(f"event type {cls.type} is declared twice")
            _REGISTRY[cls.type] = cls

    #: The field naming what the event is about; its value is the Kafka key and the
    #: envelope's `subject`, so one customer's events stay in order.
    subject_field: ClassVar[str] = "customer_id"

    def subject(self) -> str:
        return str(getattr(self, self.subject_field))


def upcast(old_type: str, new_type: str) -> Callable[[Callable], Callable]:
    """Register a function turning `old_type`'s data into `new_type`'s."""

    def register(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable:
        _UPCASTERS[old_type] = (new_type, fn)
        return fn

    return register


def upcast_data(type_: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Follow the upcaster chain from `type_` to the newest version."""
    while type_ in _UPCASTERS:
        type_, fn = _UPCASTERS[type_][0], _UPCASTERS[type_][1]
        data = fn(data)
    return type_, data


def event_class(type_: str) -> type[Event]:
    try:
        return _REGISTRY[type_]
    except KeyError:
        raise LookupError(f"unknown event type {type_!r}") from None


def registered_events() -> dict[str, type[Event]]:
    """Every event type declared in `contracts`, by type name."""
    import contracts.domains  # noqa: F401  (declares every domain's events)

    published = {t: c for t, c in _REGISTRY.items() if c.__module__.startswith("contracts.")}
    return dict(sorted(published.items()))
