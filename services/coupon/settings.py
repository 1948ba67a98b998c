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

    # --- redeem codes and partner exchange (codes-and-partners, issue 7) ---
    #: Wrong or used codes a customer may try per window before 429 (0 turns it off).
    code_failures_per_window: int = 10
    code_failure_window_seconds: int = 600
    #: The most codes one lot holds, and how many one insert writes.
    code_lot_max: int = 100_000
    code_insert_chunk: int = 5_000
    #: The most codes a partner takes in one request.
    partner_codes_per_take: int = 1_000
    #: Where the customer service answers (a partner names our customer by mobile).
    customer_base_url: str = "http://127.0.0.1:8101"
    #: Webhooks to partners: attempts before a delivery is marked failed, the first wait
    #: between attempts (doubling, capped), each attempt's timeout, and how often to look.
    partner_webhook_attempts: int = 8
    partner_webhook_backoff_seconds: float = 2.0
    partner_webhook_max_backoff_seconds: float = 600.0
    partner_webhook_timeout_seconds: float = 10.0
    partner_webhook_poll_seconds: float = 1.0

    # --- core (issue 6): per-tenant policy, stock leases, reservations after a campaign ends
    #: How long a replica trusts its copy of a tenant's policy (time zone, margin rules).
    policy_cache_seconds: float = 5.0
    #: Stock leases: each replica renews its heartbeat this often; a lease whose replica
    #: gave no sign of life for `lease_ttl_seconds` is swept (by any replica, every
    #: `lease_sweep_seconds`) and its unissued units go back to the batch's stock.
    lease_heartbeat_seconds: float = 2.0
    lease_ttl_seconds: float = 15.0
    lease_sweep_seconds: float = 5.0
    #: After a campaign ends, its reservation is held per bucket of this many seconds of
    #: its coupons' expiry, and released by a sweep every `hold_sweep_seconds`.
    hold_bucket_seconds: int = 300
    hold_sweep_seconds: float = 30.0

    # --- channels (issue 7): claim centre, on-site drops, targeted issues
    #: How long a replica serves a tenant's open batches (claim centre) and active drop
    #: rules (on-site drops) from memory before reading them again.
    claim_centre_cache_seconds: float = 2.0
    drop_rules_cache_seconds: float = 2.0
    #: Where the tagging service answers (segment members for targeted issues).
    tagging_base_url: str = "http://127.0.0.1:8102"
    tagging_timeout_seconds: float = 10.0
    #: Members read (and issued in one claim round) per page of a targeted issue.
    targeted_page_size: int = 200
    #: How long a job (a targeted issue) stays with a replica that stops renewing it: a
    #: crashed replica's job resumes elsewhere after this. Longer than `lease_ttl_seconds`,
    #: so the stock the crashed replica leased is back before its job resumes.
    job_lease_seconds: float = 30.0
    #: Which consumer groups this process runs (`coupon.orders`, ...); all when unset. A
    #: deployment may run consumers apart from HTTP replicas; tests start only what they
    #: need (each group's join costs the embedded broker seconds).
    consumer_groups: set[str] | None = None

    # --- monitoring and alerts (issue 7): stats, alerts, the live alert stream
    #: How often one replica (holding the evaluator lease) sweeps every condition; changes
    #: are evaluated at once besides (this replica's own, and any seen on the broker).
    alert_sweep_seconds: float = 5.0
    alert_lease_seconds: float = 15.0
    #: An open alert is updated at most this often, and only when a measure moved this much.
    alert_update_min_seconds: float = 10.0
    alert_update_min_change_percent: float = 10.0
    #: Stock alerts: the window the issuing rate is taken over, the fewest claims in it
    #: worth projecting from, and how often one batch is evaluated at most.
    stock_rate_window_seconds: float = 300.0
    stock_alert_min_claims: int = 20
    stock_evaluate_min_seconds: float = 1.0
    #: Efficiency alerts: period length (days; growth is this period over the one before),
    #: fewest comparable peers, least subsidy worth judging, and how often they are swept.
    efficiency_period_days: int = 7
    efficiency_min_peers: int = 3
    efficiency_min_subsidy: int = 100
    efficiency_margin_points: float = 0.0
    efficiency_sweep_seconds: float = 3600.0
    #: The live stream: keep-alive comment interval (below any proxy's read timeout) and
    #: how many recent alert events per tenant a reconnecting client can resume from.
    alert_stream_keepalive_seconds: float = 5.0
    alert_stream_history: int = 500
    # compensation-and-subsidy part (issue 7): a compensation left `issuing` this long (a
    # replica stopped between counting and issuing) is finished by the resume worker,
    # which looks every `compensation_resume_seconds`.
    compensation_stall_seconds: float = 60.0
    compensation_resume_seconds: float = 15.0
    # reach part (issue 8): each coupon about to expire is announced once
    # (coupon.expiry_noticed.v1) when its validity ends within this many hours, by a sweep
    # every `expiry_notice_sweep_seconds` (one replica at a time), in batches.
    expiry_notice_hours: int = 24
    expiry_notice_sweep_seconds: float = 60.0
    expiry_notice_batch: int = 500
