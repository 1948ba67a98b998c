"""Tracked links. A message's id comes from its dedupe key (a campaign and a customer, an
event), which others may know or guess, so a link does not name the message alone: it
carries a MAC of the id under the service's secret. Only reach can make a valid one, a
re-sent message gets the same link, and a guessed or altered link is refused without a
store lookup. Pure: no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

#: 96 bits of MAC: past guessing, and short enough for an SMS.
MAC_BYTES = 12
LINK = re.compile(r"msg_[0-9a-f]{24}\.[A-Za-z0-9_-]{16}")


def _mac(key: bytes, message_id: str) -> str:
    digest = hmac.new(key, message_id.encode(), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode()


def link_id(key: bytes, message_id: str) -> str:
    return f"{message_id}.{_mac(key, message_id)}"


def message_of(key: bytes, link: str) -> str | None:
    """The message a link names, or None when it is malformed or its MAC does not hold."""
    if not LINK.fullmatch(link):
        return None
    message_id, _, mac = link.partition(".")
    if not hmac.compare_digest(_mac(key, message_id), mac):
        return None
    return message_id
