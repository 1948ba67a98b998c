"""A local stand-in for WeCom's corporate-tag API: real HTTP on loopback, with knobs for
token expiry, busy replies and permanent refusals, and a record of what it received."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Query

CORP_ID = "ww-test-corp"
SECRET = "test-secret"


@dataclass
class WeComState:
    tokens: set[str] = field(default_factory=set)
    tokens_issued: int = 0
    #: mark_tag calls answered -1 (busy) before one succeeds.
    busy_replies: int = 0
    #: external_userids WeCom refuses for good (errcode 84061: not a contact of the user).
    refused: set[str] = field(default_factory=set)
    tags: dict[str, str] = field(default_factory=dict)
    marks: list[dict[str, Any]] = field(default_factory=list)
    mark_calls: int = 0

    def expire_tokens(self) -> None:
        self.tokens.clear()


def wecom_app(state: WeComState) -> FastAPI:
    app = FastAPI()
    ids = itertools.count(1)

    def bad_token(token: str) -> dict[str, Any] | None:
        if token not in state.tokens:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    @app.get("/cgi-bin/gettoken")
    async def gettoken(corpid: str, corpsecret: str) -> dict[str, Any]:
        if (corpid, corpsecret) != (CORP_ID, SECRET):
            return {"errcode": 40001, "errmsg": "invalid credential"}
        state.tokens_issued += 1
        token = f"tok-{state.tokens_issued}"
        state.tokens.add(token)
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}

    @app.post("/cgi-bin/externalcontact/add_corp_tag")
    async def add_corp_tag(body: dict[str, Any], access_token: str = Query()) -> dict[str, Any]:
        if refused := bad_token(access_token):
            return refused
        name = body["tag"][0]["name"]
        state.tags.setdefault(name, f"et{next(ids)}")
        tag = {"id": state.tags[name], "name": name}
        return {"errcode": 0, "errmsg": "ok", "tag_group": {"group_id": "g1", "tag": [tag]}}

    @app.post("/cgi-bin/externalcontact/mark_tag")
    async def mark_tag(body: dict[str, Any], access_token: str = Query()) -> dict[str, Any]:
        if refused := bad_token(access_token):
            return refused
        state.mark_calls += 1
        if state.busy_replies > 0:
            state.busy_replies -= 1
            return {"errcode": -1, "errmsg": "system busy"}
        if body["external_userid"] in state.refused:
            return {"errcode": 84061, "errmsg": "not external contact"}
        state.marks.append(body)
        return {"errcode": 0, "errmsg": "ok"}

    return app
