"""Each provider against a local peer that behaves like the real receiver: SMTP (aiosmtpd),
the signed webhook (checks the HMAC), Alibaba Cloud SMS (checks the RPC signature); and the
guard around them: transient faults retried, a failing provider's circuit opened without
stalling another provider."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from services.reach.domain.breaker import CircuitBreaker
from services.reach.domain.channels import Channel
from services.reach.domain.templates import Content
from services.reach.providers.aliyun_sms import AliyunSmsProvider
from services.reach.providers.base import Accepted, Outbound, PermanentFailure, TransientFailure
from services.reach.providers.guarded import Guarded
from services.reach.providers.smtp import SmtpProvider
from services.reach.providers.webhook import WebhookProvider
from tests.reach.peers import Inbox, SmsPeer, WebhookPeer, smtp_peer
from tests.support.servers import free_port, serve

SECRET = "whsec-test-1"


def outbound(
    n: int = 1, *, channel: Channel = Channel.EMAIL, address: str | None = None, **content: str
) -> Outbound:
    return Outbound(
        tenant="t1",
        message_id=f"msg_{n:024x}",
        customer_id=f"cus_{n}",
        channel=channel,
        content=Content(
            **(content or {"subject": "双十一", "body": "林小姐 您的 20 元券明天到期"})
        ),
        address=address,
        variables={"coupon_amount": "20"},
    )


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    controller = smtp_peer(box, port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


async def test_smtp_delivers_the_rendered_email_to_the_customer(inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    smtp = SmtpProvider(host="127.0.0.1", port=port, sender="shop@brand.example")

    [outcome] = await smtp.send_many([outbound(address="lin@example.com")])

    assert isinstance(outcome, Accepted)
    [mail] = box.messages
    assert mail["To"] == "lin@example.com" and mail["From"] == "shop@brand.example"
    assert mail["Subject"] == "双十一"
    assert mail["X-Reach-Message-Id"] == f"msg_{1:024x}"
    assert "20 元券" in mail.get_content()  # type: ignore[attr-defined]


async def test_smtp_refusals_are_final_or_transient_by_reply_code(inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    box.refuse = {"gone@example.com": 550, "full@example.com": 452}
    smtp = SmtpProvider(host="127.0.0.1", port=port, sender="shop@brand.example")

    gone, full, none = await smtp.send_many(
        [
            outbound(1, address="gone@example.com"),
            outbound(2, address="full@example.com"),
            outbound(3),
        ]
    )

    assert isinstance(gone, PermanentFailure) and "550" in gone.reason
    assert isinstance(full, TransientFailure) and "452" in full.reason
    assert isinstance(none, PermanentFailure) and none.reason == "no_email_address"
    assert box.messages == []


async def test_smtp_server_down_is_transient() -> None:
    smtp = SmtpProvider(host="127.0.0.1", port=free_port(), sender="s@x.example", timeout=2)
    [outcome] = await smtp.send_many([outbound(address="a@example.com")])
    assert isinstance(outcome, TransientFailure)


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[WebhookPeer, str]]:
    peer = WebhookPeer(SECRET)
    async with serve(peer.app()) as url:
        yield peer, f"{url}/hook"


async def test_webhook_posts_signed_messages_the_receiver_verifies(
    webhook: tuple[WebhookPeer, str],
) -> None:
    peer, url = webhook
    provider = WebhookProvider(url=url, secret=SECRET)
    try:
        [outcome] = await provider.send_many(
            [outbound(channel=Channel.PUSH, title="到货", body="您关注的商品到货了")]
        )
    finally:
        await provider.close()

    assert isinstance(outcome, Accepted) and outcome.provider_ref == "hook-1"
    [got] = peer.received
    assert got["idempotency_key"] == got["message_id"] == f"msg_{1:024x}"
    assert got["content"] == {"title": "到货", "body": "您关注的商品到货了", "fields": {}}


async def test_webhook_with_a_wrong_secret_is_refused_for_good(
    webhook: tuple[WebhookPeer, str],
) -> None:
    peer, url = webhook
    provider = WebhookProvider(url=url, secret="not-the-secret")
    try:
        [outcome] = await provider.send_many([outbound()])
    finally:
        await provider.close()
    assert isinstance(outcome, PermanentFailure) and outcome.reason == "webhook_401"
    assert peer.received == []


@pytest.fixture
async def sms() -> AsyncIterator[tuple[SmsPeer, AliyunSmsProvider]]:
    peer = SmsPeer(key_id="LTAI-test", secret="sms-secret")
    async with serve(peer.app()) as url:
        provider = AliyunSmsProvider(
            endpoint=f"{url}/", access_key_id="LTAI-test", access_key_secret="sms-secret"
        )
        try:
            yield peer, provider
        finally:
            await provider.close()


def sms_message(n: int = 1) -> Outbound:
    return outbound(
        n,
        channel=Channel.SMS,
        address="13800138000",
        body="${customer}您好",
        sign_name="品牌商城",
        platform_template_id="SMS_71390007",
    )


async def test_aliyun_sms_request_carries_a_signature_the_peer_verifies(
    sms: tuple[SmsPeer, AliyunSmsProvider],
) -> None:
    peer, provider = sms
    [outcome] = await provider.send_many([sms_message()])

    assert isinstance(outcome, Accepted) and outcome.provider_ref == "biz1"
    [params] = peer.received
    assert params["Action"] == "SendSms" and params["Version"] == "2017-05-25"
    assert params["PhoneNumbers"] == "13800138000" and params["SignName"] == "品牌商城"
    assert params["TemplateCode"] == "SMS_71390007"
    assert params["TemplateParam"] == '{"coupon_amount":"20"}'
    assert params["OutId"] == f"msg_{1:024x}"


async def test_aliyun_sms_with_a_wrong_secret_fails_the_peer_check(
    sms: tuple[SmsPeer, AliyunSmsProvider],
) -> None:
    peer, provider = sms
    provider.access_key_secret = "wrong"
    [outcome] = await provider.send_many([sms_message()])
    assert isinstance(outcome, PermanentFailure) and "SignatureDoesNotMatch" in outcome.reason
    assert peer.received == []


async def test_aliyun_flow_control_is_retried_and_then_sent(
    sms: tuple[SmsPeer, AliyunSmsProvider],
) -> None:
    peer, provider = sms
    peer.answers = [(200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发流控"}), (503, {})]
    guarded = Guarded(provider, attempts=3, backoff=0.01)

    [outcome] = await guarded.send_many([sms_message()])

    assert isinstance(outcome, Accepted)
    assert peer.calls == 3 and len(peer.received) == 1


async def test_a_bad_number_is_not_retried(sms: tuple[SmsPeer, AliyunSmsProvider]) -> None:
    peer, provider = sms
    peer.answers = [(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"})]
    [outcome] = await Guarded(provider, attempts=3, backoff=0.01).send_many([sms_message()])
    assert isinstance(outcome, PermanentFailure) and "MOBILE_NUMBER_ILLEGAL" in outcome.reason
    assert peer.calls == 1


async def test_retries_only_the_messages_that_failed(webhook: tuple[WebhookPeer, str]) -> None:
    peer, url = webhook
    peer.fail_with = [503]
    provider = WebhookProvider(url=url, secret=SECRET)
    try:
        outcomes = await Guarded(provider, attempts=3, backoff=0.01).send_many(
            [outbound(1), outbound(2), outbound(3)]
        )
    finally:
        await provider.close()
    assert all(isinstance(o, Accepted) for o in outcomes)
    assert sorted(r["message_id"] for r in peer.received) == [
        outbound(i).message_id for i in (1, 2, 3)
    ]


async def test_an_open_circuit_fails_fast_and_leaves_other_providers_alone(
    webhook: tuple[WebhookPeer, str],
) -> None:
    _, url = webhook
    dead = WebhookProvider(url=f"http://127.0.0.1:{free_port()}/hook", secret=SECRET, timeout=1)
    alive = WebhookProvider(url=url, secret=SECRET)
    broken = Guarded(dead, attempts=1, breaker=CircuitBreaker(threshold=2, cool_down=60))
    healthy = Guarded(alive, attempts=1, breaker=CircuitBreaker(threshold=2, cool_down=60))
    try:
        for _ in range(2):
            [failure] = await broken.send_many([outbound()])
            assert isinstance(failure, TransientFailure) and "unreachable" in failure.reason
        started = time.monotonic()
        [fast] = await broken.send_many([outbound()])
        assert isinstance(fast, TransientFailure) and fast.reason == "provider_unavailable"
        assert time.monotonic() - started < 0.05
        [ok] = await healthy.send_many([outbound()])
        assert isinstance(ok, Accepted)
    finally:
        await dead.close()
        await alive.close()
