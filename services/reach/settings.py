from typing import ClassVar

from servicekit.settings import ServiceSettings, service_config


class ReachSettings(ServiceSettings):
    service_name: ClassVar[str] = "reach"
    model_config = service_config("reach")

    #: Where segment members are read (the tagging service) and contacts resolved and
    #: unsubscribes recorded (the customer service).
    tagging_base_url: str = "http://127.0.0.1:8102"
    customer_base_url: str = "http://127.0.0.1:8101"
    #: The public address of this service's routes, for tracked links in messages
    #: (`{{link}}` becomes `<public_base_url>/r/<message_id>`).
    public_base_url: str = "http://127.0.0.1:8080/api/v1/reach"
    #: Which provider sends each channel (`REACH_CHANNEL_PROVIDERS='{"email": "smtp"}'`);
    #: a channel not named uses the sandbox.
    channel_providers: dict[str, str] = {}
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "noreply@reach.local"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    webhook_url: str | None = None
    webhook_secret: str = ""
    aliyun_sms_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    aliyun_sms_access_key_id: str | None = None
    aliyun_sms_access_key_secret: str = ""
    #: The secret in the delivery-report URL set in the deployment's Alibaba Cloud account
    #: (`<public_base_url>/receipts/aliyun-sms/<token>`; a tenant with its own account gets
    #: a URL of its own). Empty: the deployment takes no reports.
    aliyun_sms_receipt_token: str = ""
    #: Every provider call and service call gives up after this long.
    provider_timeout_seconds: float = 5.0
    provider_attempts: int = 3
    provider_backoff_seconds: float = 0.2
    #: Failures in a row that open a provider's circuit, and how long it stays open.
    breaker_threshold: int = 5
    breaker_cool_down_seconds: float = 30.0
    #: How often due drafts (delayed, deferred past quiet hours) and due campaigns are looked for.
    dispatch_poll_seconds: float = 1.0
    #: How often birthday rules look for customers whose birthday month it is.
    birthday_sweep_seconds: float = 3600.0
    #: Messages decided and sent together (one batch of reads, one of writes).
    dispatch_batch: int = 500
    #: Which consumer groups this process runs (`reach.customer`, `reach.tagging`,
    #: `reach.coupon`, `reach.loyalty`); all when unset. A deployment may run its consumers
    #: in processes apart from its HTTP replicas; tests start only the groups they need.
    consumer_groups: set[str] | None = None
    #: Orders paid this long after a touch are still attributed to it.
    attribution_window_days: int = 7
    #: Keys that seal tenants' provider secrets at rest, by key id, base64 of 32 bytes
    #: (REACH_SEALING_KEYS='{"k1": "..."}'); empty: one key derived from REACH_SECRET_KEY.
    sealing_keys: dict[str, str] = {}
    #: The key new secrets are sealed with; older keys still open what they sealed.
    sealing_active_key: str = ""
    #: How long a replica reuses a tenant's provider config before reading it again (a
    #: change made on another replica takes effect within this long).
    provider_config_cache_seconds: float = 5.0
    #: Ops alerts by SMS to staff: the signature, and the template registered with the
    #: carrier for them (Alibaba Cloud sends only registered templates; the sandbox and a
    #: webhook take the text as it is).
    staff_sms_sign_name: str = "运营提醒"
    staff_sms_template_code: str | None = None
