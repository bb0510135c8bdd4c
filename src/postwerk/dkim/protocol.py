"""The milter protocol (Sendmail's, version 6, as Postfix 3.7's milter8 client speaks it): reading the MTA's
packets and writing a filter's answers, for a filter that reads the envelope macros and the headers and adds
one header at the end of the message. Imports nothing of Postwerk's.

A packet is a 4-byte big-endian length, then that many bytes: a command (or reply) letter and its data.
Strings in the data end with NUL. Reference: libmilter's `mfdef.h` and Postfix's `src/milter/milter8.c`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Commands, MTA -> filter.
ABORT = b"A"
BODY = b"B"
CONNECT = b"C"
MACRO = b"D"
END_OF_BODY = b"E"
HELO = b"H"
QUIT_NEW_CONNECTION = b"K"
HEADER = b"L"
MAIL = b"M"
END_OF_HEADERS = b"N"
OPTION_NEGOTIATION = b"O"
QUIT = b"Q"
RCPT = b"R"
DATA = b"T"
UNKNOWN = b"U"
# Commands answered by nothing.
SILENT = frozenset({ABORT, MACRO, QUIT, QUIT_NEW_CONNECTION})

# Replies, filter -> MTA.
ACCEPT = b"a"
CONTINUE = b"c"
INSERT_HEADER = b"i"
REPLY_CODE = b"y"
TEMPFAIL = b"t"

VERSION = 6
ACTION_ADD_HEADERS = 0x01  # SMFIF_ADDHDRS: add and insert headers
# Protocol steps the filter asks the MTA to leave out (SMFIP_*): it has no use for them.
NO_CONNECT = 0x01
NO_HELO = 0x02
NO_RCPT = 0x08
NO_REPLY_HEADERS = 0x80  # SMFIP_NR_HDR: no answer to each header
NO_UNKNOWN = 0x100
NO_DATA = 0x200
UNWANTED_STEPS = NO_CONNECT | NO_HELO | NO_RCPT | NO_REPLY_HEADERS | NO_UNKNOWN | NO_DATA

# Postfix sends body chunks of at most 64 KiB and headers of at most header_size_limit (100 KiB): a larger
# packet is no MTA's.
MAX_PACKET = 1024 * 1024


class ProtocolError(Exception):
    """The peer does not speak the milter protocol (or not the part of it this filter knows)."""


@dataclass(frozen=True)
class Packet:
    command: bytes
    data: bytes


def first_packet(buffer: bytes) -> tuple[Packet, bytes] | None:
    """The packet at the start of `buffer` and the rest after it, or None while it is incomplete. Raises
    ProtocolError for a length no MTA's packet has."""
    if len(buffer) < 4:
        return None
    (length,) = struct.unpack_from("!I", buffer)
    if not 1 <= length <= MAX_PACKET:
        raise ProtocolError(f"packet of {length} bytes")
    end = 4 + length
    if len(buffer) < end:
        return None
    return Packet(buffer[4:5], buffer[5:end]), buffer[end:]


def encode(command: bytes, data: bytes = b"") -> bytes:
    return struct.pack("!I", len(data) + 1) + command + data


def negotiate(data: bytes) -> tuple[bytes, int]:
    """The answer to the MTA's option negotiation (its version, actions and protocol steps), and the steps
    both sides agreed to leave out."""
    if len(data) < 12:
        raise ProtocolError("short option negotiation")
    version, actions, steps = struct.unpack("!III", data[:12])
    if version < 2:
        raise ProtocolError(f"milter protocol version {version}")
    agreed_actions = actions & ACTION_ADD_HEADERS
    if not agreed_actions:
        raise ProtocolError("the MTA lets no filter add headers")
    agreed_steps = steps & UNWANTED_STEPS if version >= VERSION else 0
    answer = struct.pack("!III", min(version, VERSION), agreed_actions, agreed_steps)
    return encode(OPTION_NEGOTIATION, answer), agreed_steps


def strings(data: bytes) -> list[bytes]:
    """NUL-terminated strings (the last NUL may be missing)."""
    parts = data.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return parts


def macros(data: bytes) -> dict[str, str]:
    """A macro packet: the command letter it belongs to, then name and value strings. Names come as
    `{auth_authen}` or `i`; returned without braces."""
    parts = strings(data[1:])
    result = {}
    for name, value in zip(parts[0::2], parts[1::2], strict=False):
        result[name.decode("utf-8", "replace").strip("{}")] = value.decode("utf-8", "replace")
    return result


def header(data: bytes) -> tuple[bytes, bytes]:
    parts = data.split(b"\0")
    if len(parts) < 2:
        raise ProtocolError("header without a value")
    return parts[0], parts[1]


def reply_code(reply: str) -> bytes:
    """An SMTP reply (`553 5.7.1 text`) as the filter's answer. Printable ASCII only, and no `%` (Sendmail
    reads the text as a format string)."""
    text = "".join(c if " " <= c <= "~" and c != "%" else "_" for c in reply)
    if len(text) < 3 or text[0] not in "45" or not text[:3].isdigit():
        raise ValueError(f"not an SMTP error reply: {reply!r}")
    return encode(REPLY_CODE, text.encode("ascii") + b"\0")


def insert_header(index: int, name: bytes, value: bytes) -> bytes:
    return encode(INSERT_HEADER, struct.pack("!I", index) + name + b"\0" + value + b"\0")
