from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class TaggingSettings(ServiceSettings):
    service_name: ClassVar[str] = "tagging"
    model_config = service_config("tagging")
    #: Tag sync to WeCom (企业微信): off unless a base URL is set. One corp for the
    #: deployment (a per-tenant corp would move these into tenant configuration).
    wecom_base_url: str | None = None
    wecom_corp_id: str = ""
    wecom_corp_secret: str = ""
    #: How often the sync and expiry workers look for work when idle.
    sync_poll_seconds: float = 2.0
    sync_retry_base_seconds: float = 5.0
    expiry_poll_seconds: float = 30.0
    #: Tag rules with time-based conditions are re-evaluated over all customers this often.
    rule_sweep_interval_seconds: float = 300.0
    rule_sweep_batch_size: int = 100
    #: Longer than a sweep of a large tenant takes between two lease renewals (per batch).
    rule_sweep_lease_seconds: float = 120.0
    #: The audience engine follows the facts store's changes this often (and before every
    #: estimate or build), re-reading the last `audience_overlap_seconds` each time so a
    #: transaction that committed late is not missed.
    audience_poll_seconds: float = 1.0
    audience_overlap_seconds: float = 10.0
    #: Segments whose rule depends on time alone ("no purchase in 180 days") are rebuilt
    #: this often; every segment is also kept current by events.
    segment_refresh_interval_seconds: float = 3600.0
    #: Build snapshots kept per segment (a campaign's frozen list stays for this many builds).
    segment_snapshots_kept: int = 10
