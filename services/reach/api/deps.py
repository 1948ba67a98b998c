"""What routes are handed: the reach collaborators of this process."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from services.reach.service.wiring import Reach, reach_of

ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
TemplateId = Annotated[str, Path(pattern=ID)]
CustomerId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")]
CampaignId = Annotated[str, Path(pattern=r"^cmp_[0-9a-f]{16}$")]
RuleId = Annotated[str, Path(pattern=r"^rul_[0-9a-f]{16}$")]
MessageId = Annotated[str, Path(pattern=r"^msg_[0-9a-f]{24}$")]


async def _reach(request: Request) -> Reach:
    return reach_of(request.app.state.runtime)


ReachDep = Annotated[Reach, Depends(_reach)]
