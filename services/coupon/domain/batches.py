"""A batch (批次): one campaign's coupons of one kind, with its production, claim and use
rules (生产属性, 领取属性, 消费属性), checked when it is configured."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from servicekit.errors import InvalidInput
from services.coupon.domain.decay import DecayPolicy

MAX_CLAIM_WINDOW = timedelta(days=90)
MAX_DAYS_AFTER_CLAIM = 7
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class DiscountKind(StrEnum):
    DIRECT = "direct"  # 直减
    THRESHOLD = "threshold"  # 满X减Y
    PERCENT = "percent"  # 满X打Y折, capped
    RETURN = "return"  # 满X返Y券: a follow-up coupon once the order is paid
    RANDOM = "random"  # 随机红包: amount drawn at claim time


class ScopeKind(StrEnum):
    ORDER = "order"
    PRODUCTS = "products"
    CATEGORIES = "categories"
    SHIPPING = "shipping"


class PlatformKind(StrEnum):
    ALL = "all"
    SELF_OPERATED = "self_operated"
    MERCHANT = "merchant"


class Audience(StrEnum):
    ANYONE = "anyone"
    NEW_CUSTOMERS = "new_customers"  # no paid order yet when claiming
    FIRST_ORDER = "first_order"  # as new customers, and usable only on the first order


class Discount(BaseModel):
    """Amounts in minor units (分). `threshold` is the least qualifying amount (X)."""

    kind: DiscountKind
    amount: int | None = Field(None, ge=1, le=10_000_000)
    threshold: int = Field(0, ge=0, le=100_000_000)
    #: Percent: the share of the price the customer pays (80 = 8折).
    pay_percent: int | None = Field(None, ge=1, le=99)
    cap: int | None = Field(None, ge=1, le=10_000_000)
    min_amount: int | None = Field(None, ge=1, le=10_000_000)
    max_amount: int | None = Field(None, ge=1, le=10_000_000)
    #: Return: the key of the campaign's batch whose coupon is issued when the order is paid.
    follow_up_batch: str | None = Field(None, pattern=KEY_PATTERN)

    @model_validator(mode="after")
    def _shape(self) -> Discount:
        need = {
            DiscountKind.DIRECT: ("amount",),
            DiscountKind.THRESHOLD: ("amount",),
            DiscountKind.PERCENT: ("pay_percent", "cap"),
            DiscountKind.RETURN: ("amount", "follow_up_batch"),
            DiscountKind.RANDOM: ("min_amount", "max_amount"),
        }[self.kind]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind} discount needs {', '.join(missing)}")
        if self.kind in (DiscountKind.THRESHOLD, DiscountKind.RETURN) and self.threshold <= 0:
            raise ValueError(f"a {self.kind} discount needs a threshold above 0")
        if self.kind == DiscountKind.RANDOM and self.min_amount > self.max_amount:  # type: ignore[operator]
            raise ValueError("min_amount must not exceed max_amount")
        return self

    def max_value(self) -> int:
        """The most one coupon can ever be worth at checkout: what approval reserves."""
        return {
            DiscountKind.DIRECT: self.amount,
            DiscountKind.THRESHOLD: self.amount,
            DiscountKind.PERCENT: self.cap,
            DiscountKind.RETURN: 0,  # its follow-up batch reserves the returned coupon
            DiscountKind.RANDOM: self.max_amount,
        }[self.kind] or 0


class Scope(BaseModel):
    kind: ScopeKind = ScopeKind.ORDER
    product_ids: list[str] = Field(default_factory=list, max_length=500)
    categories: list[str] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _listed(self) -> Scope:
        if self.kind == ScopeKind.PRODUCTS and not self.product_ids:
            raise ValueError("a products scope lists product_ids")
        if self.kind == ScopeKind.CATEGORIES and not self.categories:
            raise ValueError("a categories scope lists categories")
        return self


class Platform(BaseModel):
    kind: PlatformKind = PlatformKind.ALL
    merchant_id: str | None = Field(None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _merchant(self) -> Platform:
        if (self.kind == PlatformKind.MERCHANT) != (self.merchant_id is not None):
            raise ValueError("merchant_id is given exactly for a merchant platform")
        return self


class Validity(BaseModel):
    """Either days after the claim (at most 7) or a fixed window (e.g. a festival)."""

    days_after_claim: int | None = Field(None, ge=1, le=MAX_DAYS_AFTER_CLAIM)
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Validity:
        fixed = self.valid_from is not None and self.valid_until is not None
        if (self.days_after_claim is not None) == fixed:
            raise ValueError("give days_after_claim, or both valid_from and valid_until")
        if fixed and self.valid_until <= self.valid_from:  # type: ignore[operator]
            raise ValueError("valid_until must be after valid_from")
        return self

    def window(self, claimed_at: datetime) -> tuple[datetime, datetime]:
        if self.days_after_claim is not None:
            return claimed_at, claimed_at + timedelta(days=self.days_after_claim)
        assert self.valid_from is not None and self.valid_until is not None
        return self.valid_from, self.valid_until


class UsableHours(BaseModel):
    """Hours of the day (tenant's time zone) when the coupon can be used: [from, to)."""

    from_hour: int = Field(ge=0, le=23)
    to_hour: int = Field(ge=1, le=24)

    @model_validator(mode="after")
    def _order(self) -> UsableHours:
        if self.to_hour <= self.from_hour:
            raise ValueError("to_hour must be after from_hour")
        return self


class BatchSpec(BaseModel):
    """What a campaign asks for, batch by batch; approval turns each into a batch."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    discount: Discount
    scope: Scope = Field(default_factory=Scope)
    platform: Platform = Field(default_factory=Platform)
    audience: Audience = Audience.ANYONE
    claim_from: datetime
    claim_until: datetime
    validity: Validity
    usable_weekdays: list[int] = Field(default_factory=list, max_length=7)
    usable_hours: UsableHours | None = None
    stock: int = Field(ge=1, le=10_000_000)
    per_customer_limit: int = Field(1, ge=1, le=100)
    per_customer_daily_limit: int | None = Field(None, ge=1, le=100)
    #: Most coupons of this batch issued per second, over all replicas (None: no limit).
    issue_rate_per_second: int | None = Field(None, ge=1, le=100_000)
    #: Whether a used coupon returns to the wallet when its order is refunded.
    return_on_refund: bool = True
    # --- channels part (issue 7)
    #: Random red packets only: how a customer's repeated claims decay (domain/decay.py).
    random_decay: DecayPolicy | None = None
    #: Whether the claim centre (领券中心) lists the batch; a batch meant only for on-site
    #: drops, targeted issues or exchanges is left out of it.
    in_claim_centre: bool = True

    @model_validator(mode="after")
    def _weekdays(self) -> BatchSpec:
        if any(not 1 <= d <= 7 for d in self.usable_weekdays):
            raise ValueError("usable_weekdays are 1 (Monday) to 7 (Sunday)")
        return self

    @model_validator(mode="after")
    def _decay_of_random_packets(self) -> BatchSpec:
        decay, discount = self.random_decay, self.discount
        if decay is None:
            return self
        if discount.kind != DiscountKind.RANDOM:
            raise ValueError("random_decay is for random red packets only")
        if decay.floor > (discount.min_amount or 0):
            raise ValueError("random_decay.floor must not exceed the discount's min_amount")
        return self

    def max_subsidy(self) -> int:
        return self.stock * self.discount.max_value()


class MarginPolicy(BaseModel):
    min_margin_percent: int = Field(5, ge=0, le=100)
    cost_ratio_percent: int = Field(70, ge=0, le=100)


def check_batch(spec: BatchSpec, policy: MarginPolicy, *, field: str = "batch") -> None:
    """Every configuration rule the schema alone cannot say; InvalidInput names the first
    broken one."""
    if spec.claim_until <= spec.claim_from:
        raise InvalidInput("claim_until must be after claim_from", field=f"{field}.claim_until")
    if spec.claim_until - spec.claim_from > MAX_CLAIM_WINDOW:
        raise InvalidInput(
            "a claim window is at most 90 days", field=f"{field}.claim_until", code="claim_window"
        )
    validity = spec.validity
    if validity.valid_until is not None and validity.valid_until <= spec.claim_from:
        raise InvalidInput(
            "the fixed validity ends before claiming starts", field=f"{field}.validity"
        )
    daily = spec.per_customer_daily_limit
    if daily is not None and daily > spec.per_customer_limit:
        raise InvalidInput(
            "the daily limit exceeds the per-customer limit",
            field=f"{field}.per_customer_daily_limit",
        )
    if reason := margin_problem(spec.discount, spec.scope, policy):
        raise InvalidInput(reason, field=f"{field}.discount", code="margin_check_failed")


def margin_problem(discount: Discount, scope: Scope, policy: MarginPolicy) -> str | None:
    """Why the discount can reach a zero price or too thin a margin, or None.

    The worst order is the smallest that qualifies (the threshold): a fixed discount is the
    largest share of the price there; a percent discount is the same share everywhere."""
    if scope.kind == ScopeKind.SHIPPING:
        return None  # it reduces the shipping fee, never the goods' price
    if discount.kind == DiscountKind.PERCENT:
        price, off = 100, 100 - (discount.pay_percent or 0)
    else:
        price, off = discount.threshold, discount.max_value()
        if discount.kind == DiscountKind.RETURN:
            off = discount.amount or 0
        if price <= off:
            return (
                f"the discount ({off}) can reach a zero price: the least qualifying order "
                f"({price}) must be above it"
            )
    net = price - off
    cost = price * policy.cost_ratio_percent / 100
    margin = (net - cost) / net * 100
    if margin < policy.min_margin_percent:
        return (
            f"the discount leaves a margin of {margin:.1f}% on the least qualifying order "
            f"(cost taken as {policy.cost_ratio_percent}% of the price); at least "
            f"{policy.min_margin_percent}% is required"
        )
    return None


def check_campaign_batches(specs: list[BatchSpec], policy: MarginPolicy) -> None:
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise InvalidInput("batch keys must be distinct", field="batches", code="duplicate_key")
    for i, spec in enumerate(specs):
        check_batch(spec, policy, field=f"batches.{i}")
        follow = spec.discount.follow_up_batch
        if follow is not None and (follow == spec.key or follow not in keys):
            raise InvalidInput(
                "a return discount names another batch of the campaign",
                field=f"batches.{i}.discount.follow_up_batch",
            )
