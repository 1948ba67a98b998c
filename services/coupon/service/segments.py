"""Segment members from the tagging service over HTTP: the coupon service never reads
tagging's collections."""

from __future__ import annotations

import httpx

from servicekit import peers

#: Who the coupon service says it is to the services it calls.
CALLER = {"X-Actor-Id": "coupon", "X-Actor-Kind": "service"}


class SegmentMembers(peers.SegmentMembers):
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        super().__init__(http, base_url, caller=CALLER)
