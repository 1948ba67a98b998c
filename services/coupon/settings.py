from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class CouponSettings(ServiceSettings):
    service_name: ClassVar[str] = "coupon"
    model_config = service_config("coupon")

    #: The tenants' time zone: day boundaries of daily claim limits and usable hours.
    time_zone: str = "Asia/Shanghai"
    #: Margin check at configuration: the least margin a discounted order may keep, and the
    #: share of the price that is cost when a batch is checked (orders with line costs are
    #: checked against their real cost at checkout).
    min_margin_percent: int = 5
    cost_ratio_percent: int = 70
    #: How long a coupon locked to an unpaid order stays locked.
    lock_seconds: int = 1800
    #: Stock units a replica leases from a batch at a time (one conditional update each).
    stock_lease_block: int = 500
    #: Claims one flush writes at most (one transaction, one insert_many).
    claim_flush_size: int = 500
    #: After a batch is seen sold out, refusals are answered from memory for this long
    #: before the store is asked again (stock may come back from another replica's lease).
    sold_out_recheck_seconds: float = 2.0
    #: Rate limits, held in the store so they hold across replicas (0 turns one off).
    customer_claims_per_minute: int = 30
    channel_claims_per_second: int = 5000
    partner_requests_per_second: int = 200
    #: How often rate windows past their expiry are deleted.
    rate_window_sweep_seconds: float = 60.0
    #: How often expired locks are swept back to available.
    lock_sweep_seconds: float = 5.0
