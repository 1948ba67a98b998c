"""Channels a message travels by, the purposes it may serve, and who receives it.

Channel and purpose names are the customer service's consent names, so a consent read from
its events applies to a channel here without translation."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    #: An outbound call: a task on the call centre's list, not a message.
    CALL = "call"
    #: A mini-program one-time subscription message (订阅消息).
    SUBSCRIPTION_MESSAGE = "subscription_message"
    #: WeChat official account / WeCom message to the customer.
    WECHAT = "wechat"
    EMAIL = "email"
    PUSH = "push"


class Purpose(StrEnum):
    MARKETING = "marketing"
    #: Service messages (an order notice, an advisor's reminder) ignore quiet hours and caps.
    SERVICE = "service"


class Recipient(StrEnum):
    CUSTOMER = "customer"
    #: The customer's advisor (a follow-up reminder): staff, so no consent or caps apply.
    ADVISOR = "advisor"
