"""Messages the end-to-end tests send: plain UTF-8 text with CRLF line ends, the bytes a client puts on the
wire (so a stored message can be compared with them byte for byte)."""

from __future__ import annotations

DATE = "Thu, 26 Nov 2026 10:00:00 +0000"


def text_message(
    sender: str,
    recipient: str,
    subject: str,
    body: str,
    *,
    message_id: str = "e2e-test@client.postwerk.test",
    extra_headers: tuple[str, ...] = (),
) -> bytes:
    lines = [
        *extra_headers,
        f"From: {sender}",
        f"To: {recipient}",
        f"Subject: {subject}",
        f"Message-ID: <{message_id}>",
        f"Date: {DATE}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode()
