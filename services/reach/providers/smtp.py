"""Email over SMTP (stdlib smtplib in a worker thread, one connection per message, with a
timeout). 4xx replies and dropped connections are transient; 5xx refusals are not."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

from services.reach.providers.base import (
    Accepted,
    Outbound,
    PermanentFailure,
    Provider,
    TransientFailure,
)


class SmtpProvider(Provider):
    name = "smtp"
    address_kind = "email"
    concurrency = 4

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls
        self.timeout = timeout

    async def send(self, message: Outbound) -> Accepted:
        if not message.address:
            raise PermanentFailure("no_email_address")
        email = self._email(message)
        await asyncio.to_thread(self._deliver, email)
        return Accepted(provider_ref=email["Message-ID"])

    def _email(self, message: Outbound) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.address
        email["Subject"] = message.content.subject or ""
        domain = self.sender.rpartition("@")[2] or "reach.local"
        email["Message-ID"] = f"<{message.message_id}@{domain}>"
        email["X-Reach-Message-Id"] = message.message_id
        email.set_content(message.content.body or "")
        return email

    def _deliver(self, email: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            code = min(code for code, _ in exc.recipients.values())
            raise _by_code(code, "recipient_refused") from exc
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error.decode(errors="replace")[:200]) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise TransientFailure(f"smtp_unreachable: {type(exc).__name__}") from exc


def _by_code(code: int, reason: str) -> Exception:
    if 400 <= code < 500:
        return TransientFailure(f"smtp_{code}: {reason}")
    return PermanentFailure(f"smtp_{code}: {reason}")
