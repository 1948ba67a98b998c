"""Subsidy strategy (补贴策略): how much each merchant or product gets, so the strongest get
the most and the total stays within the budget. Pure: no I/O.

For each candidate:
- its indicators (conversion rate, repurchase rate, average order value) are normalised to
  [0, 1] by min-max over the candidates of the plan (a candidate set where everyone is equal
  on an indicator gets 0.5 on it: the indicator tells them apart no more than a coin would);
- its score Y is the weighted mean of the normalised indicators (weights are relative, need
  not sum to 1);
- its subsidy is X = a + Y^t · (b - a), within [a, b] (minor units, rounded down). t > 1
  keeps most of the money for the top; t < 1 spreads it.
If the subsidies add up to more than the budget, the part above the floor `a` is scaled down
by one factor for everyone, which keeps the order and the bounds; a budget too small for
every candidate's floor is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from servicekit.errors import InvalidInput

Indicator = Literal["conversion", "repurchase", "average_order_value"]
INDICATORS: tuple[Indicator, ...] = ("conversion", "repurchase", "average_order_value")
NEUTRAL = 0.5


class SubsidyPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Floor and ceiling of one candidate's subsidy, in minor units.
    floor: int = Field(ge=0)
    ceiling: int = Field(ge=0)
    #: t: the curve's shape (1 = linear in the score).
    shape: float = Field(gt=0, le=10)
    weights: dict[Indicator, float] = Field(
        default_factory=lambda: {"conversion": 1.0, "repurchase": 1.0, "average_order_value": 1.0}
    )

    # Field validators (not one model validator) so a refusal names its field.
    @field_validator("ceiling")
    @classmethod
    def _above_floor(cls, ceiling: int, info: ValidationInfo) -> int:
        if ceiling < info.data.get("floor", 0):
            raise ValueError("the ceiling is below the floor")
        return ceiling

    @field_validator("weights")
    @classmethod
    def _weights(cls, weights: dict[Indicator, float]) -> dict[Indicator, float]:
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("weights are non-negative and not all zero")
        return weights


class Candidate(BaseModel):
    """A merchant or product and its raw indicators."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    candidate_id: str = Field(min_length=1, max_length=64)
    conversion: float = Field(ge=0, le=1)
    repurchase: float = Field(ge=0, le=1)
    #: Minor units.
    average_order_value: int = Field(ge=0)


class SubsidyLine(BaseModel):
    candidate_id: str
    inputs: dict[Indicator, float]
    normalised: dict[Indicator, float]
    score: float
    subsidy: int


class Allocation(BaseModel):
    """The subsidy of every candidate, and their total against the budget."""

    lines: list[SubsidyLine]
    total: int
    budget: int
    #: The factor the part above the floor was scaled by to fit the budget (1 = not scaled).
    scale: float

    @property
    def within_budget(self) -> bool:
        return self.total <= self.budget


def normalised(candidates: Sequence[Candidate]) -> list[dict[Indicator, float]]:
    columns = {i: [float(getattr(c, i)) for c in candidates] for i in INDICATORS}
    spans = {i: (min(v), max(v)) for i, v in columns.items() if v}
    return [
        {i: _unit(columns[i][n], *spans[i]) for i in INDICATORS} for n in range(len(candidates))
    ]


def _unit(value: float, low: float, high: float) -> float:
    return NEUTRAL if high == low else (value - low) / (high - low)


def score(values: Mapping[Indicator, float], weights: Mapping[Indicator, float]) -> float:
    """The weighted mean, rounded to 9 places so float noise (0.4999999999) cannot cost a
    candidate a unit of subsidy."""
    total = sum(weights.get(i, 0.0) for i in INDICATORS)
    mean = sum(values[i] * weights.get(i, 0.0) for i in INDICATORS) / total
    return round(min(1.0, max(0.0, mean)), 9)


def subsidy(y: float, policy: SubsidyPolicy) -> int:
    """X = a + Y^t · (b - a), rounded down, within [a, b]."""
    return policy.floor + int((y**policy.shape) * (policy.ceiling - policy.floor))


@dataclass(frozen=True)
class _Scored:
    candidate: Candidate
    normalised: dict[Indicator, float]
    score: float


def plan(candidates: Sequence[Candidate], policy: SubsidyPolicy, budget: int) -> Allocation:
    if not candidates:
        return Allocation(lines=[], total=0, budget=budget, scale=1.0)
    _check_unique(candidates)
    scored = [
        _Scored(c, n, score(n, policy.weights))
        for c, n in zip(candidates, normalised(candidates), strict=True)
    ]
    raw = [subsidy(s.score, policy) for s in scored]
    floors = policy.floor * len(candidates)
    if floors > budget:
        raise InvalidInput(
            f"the budget ({budget}) is below every candidate's floor together ({floors})",
            field="budget",
            code="budget_below_floors",
        )
    above = sum(raw) - floors
    scale = Fraction(1) if sum(raw) <= budget else Fraction(budget - floors, above)
    given = [policy.floor + int((x - policy.floor) * scale) for x in raw]
    lines = [
        SubsidyLine(
            candidate_id=s.candidate.candidate_id,
            inputs={i: float(getattr(s.candidate, i)) for i in INDICATORS},
            normalised=s.normalised,
            score=s.score,  # the score the subsidy was computed from (9 places)
            subsidy=x,
        )
        for s, x in zip(scored, given, strict=True)
    ]
    return Allocation(lines=lines, total=sum(given), budget=budget, scale=float(scale))


def _check_unique(candidates: Sequence[Candidate]) -> None:
    seen: set[str] = set()
    for c in candidates:
        if c.candidate_id in seen:
            raise InvalidInput(
                f"candidate {c.candidate_id} is listed twice",
                field="candidates",
                code="duplicate_candidate",
            )
        seen.add(c.candidate_id)
