"""Development email: printed to the console and kept in var/mailbox/ for /dev/mailbox/."""

from __future__ import annotations

import email
import email.policy
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.console import EmailBackend as ConsoleBackend

MAILBOX_KEEP = 50


class DevMailboxBackend(ConsoleBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = super().send_messages(email_messages)
        folder = Path(settings.DEV_MAILBOX_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            # Time first in the name so that a directory listing is already in order.
            name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
            (folder / name).write_bytes(message.message().as_bytes())
        for old in sorted(folder.glob("*.eml"))[:-MAILBOX_KEEP]:
            old.unlink(missing_ok=True)
        return sent


@dataclass
class DevEmail:
    id: str
    to: str
    subject: str
    sent_at: datetime
    body: str


def read_mailbox() -> list[DevEmail]:
    folder = Path(settings.DEV_MAILBOX_DIR)
    messages = []
    for path in sorted(folder.glob("*.eml"), reverse=True):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body_part = parsed.get_body(preferencelist=("plain", "html"))
        messages.append(
            DevEmail(
                id=path.stem,
                to=str(parsed["To"]),
                subject=str(parsed["Subject"]),
                sent_at=datetime.fromtimestamp(int(path.stem.split("-")[0]) / 1e9, UTC),
                body=body_part.get_content() if body_part else "",
            )
        )
    return messages
