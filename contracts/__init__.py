"""The published language between services: event types, their schemas and topics."""

from contracts.envelope import Envelope
from contracts.events import Event, event_class, registered_events, upcast
from contracts.topics import DEAD_LETTER_TOPIC, Topic

__all__ = [
    "DEAD_LETTER_TOPIC",
    "Envelope",
    "Event",
    "Topic",
    "event_class",
    "registered_events",
    "upcast",
]
