"""What Postfix's configuration says about mail that leaves: relay host or direct MX delivery, the queue's
timings, SRS for forwarded mail (a second pass through Postfix), and where postmaster@ mail goes.

How forwarded mail gets its SRS envelope sender, and only it:
1. The MX's cleanup expands a forwarding address into its targets. A target in a domain Postwerk does not
   host is resolved by trivial-rewrite to the default transport; `sender_dependent_default_transport_maps`
   (an SQL lookup of the sender's domain in the domain table, on every message) sends it, when the sender is
   in neither a hosted domain nor the SRS domain, to `postwerk-srs` instead: an SMTP client to the second
   pass. Local copies are delivered as they are, with the original Return-Path.
2. The second pass (an smtpd on the loopback `reinject` listener, master.cf) hands the mail to a cleanup
   whose `sender_canonical_maps` (envelope sender only) asks Postwerk's socketmap (`tables`) for the SRS
   form. The sender is now in the SRS domain, so step 1's lookup sends the mail out directly.
3. A bounce to an SRS address arrives at the MX; `virtual_alias_maps` asks the socketmap to reverse it (only
   for SRS-shaped addresses of the mail host name, filtered before the socket is asked), and the bounce
   goes on to the original sender. Forged or expired SRS addresses are refused at RCPT as unknown.
"""

from __future__ import annotations

import re
from pathlib import Path

from postwerk.domain.addresses import parse_address
from postwerk.mailstack.layout import Layout
from postwerk.settings import Settings, split_host_port

SRS_TRANSPORT = "postwerk-srs"
RELAY_PASSWORD_FILE = "postwerk-relay-password"
SRS_FILTER_FILE = "postwerk-srs-addresses.regexp"


def postmaster_target(settings: Settings) -> str:
    """Where postmaster@ goes when no address of that name exists: --postmaster, else the provider's
    mailbox postmaster@<mail host name> (made at first start)."""
    if settings.postmaster:
        return parse_address(settings.postmaster, ".postmaster").ascii_route
    return f"postmaster@{settings.mail_hostname}"


def _sql_literal(value: str) -> str:
    # Inside '...' of a Postfix SQL map query: SQL quoting, and % is Postfix's expansion character.
    return value.replace("'", "''").replace("%", "%%")


def reinject_nexthop(settings: Settings) -> tuple[str, str]:
    """The master.cf service name of the second pass's smtpd, and the next hop its SMTP client uses."""
    host, port = split_host_port(settings.reinject)
    return f"{host}:{port}", f"[{host}]:{port}"


def values(settings: Settings, layout: Layout) -> dict[str, str]:
    """Template values (main.cf, master.cf and the map files)."""
    service, nexthop = reinject_nexthop(settings)
    tables = f"socketmap:unix:{layout.tables_socket}"
    out = {
        "reinject_listen": service,
        "srs_transport_name": SRS_TRANSPORT,
        "srs_transport": _sql_literal(f"{SRS_TRANSPORT}:{nexthop}"),
        "srs_forward_map": f"{tables}:srs-forward",
        # The socket is asked only for addresses shaped like ours: every other recipient (and every
        # internal mailbox recipient of the recursive alias expansion) never waits on it.
        "srs_reverse_map": (
            f"pipemap:{{ regexp:{layout.postfix_config / SRS_FILTER_FILE}, {tables}:srs-reverse }}"
        ),
        "postmaster_target": _sql_literal(postmaster_target(settings)),
        "queue_lifetime": f"{settings.queue_lifetime}s",
        "retry_min": f"{settings.retry_min}s",
        "retry_max": f"{max(settings.retry_max, settings.retry_min)}s",
        "relay_tls": settings.relay_tls,
    }
    relay = []
    if settings.relay_host:
        host, port = split_host_port(settings.relay_host)
        # Brackets: deliver to that host itself, no MX lookup.
        relay.append(f"relayhost = [{host}]:{port}")
        if settings.relay_user and settings.relay_password:
            relay += [
                "smtp_sasl_auth_enable = yes",
                f"smtp_sasl_password_maps = texthash:{layout.postfix_config / RELAY_PASSWORD_FILE}",
                "smtp_sasl_security_options = noanonymous",
                # With TLS required, the password never crosses the wire in clear.
                "smtp_sasl_tls_security_options = noanonymous",
            ]
    else:
        relay.append("# No relay host: direct delivery to each recipient domain's MX hosts.\nrelayhost =")
    out["relayhost"] = "\n".join(relay)
    return out


def srs_filter_file(settings: Settings, layout: Layout) -> tuple[Path, str]:
    """A regexp table (a file: main.cf would expand its `$`) that passes only SRS addresses of ours."""
    hostname = re.escape(settings.mail_hostname)
    return layout.postfix_config / SRS_FILTER_FILE, f"/^(srs0=.+@{hostname})$/ ${{1}}\n"


def relay_password_file(settings: Settings, layout: Layout) -> tuple[Path, str] | None:
    """The SASL login for the relay host (Postfix's smtp client reads it as root before it drops
    privileges), or None."""
    if not (settings.relay_host and settings.relay_user and settings.relay_password):
        return None
    host, port = split_host_port(settings.relay_host)
    secret = settings.relay_password.get_secret_value()
    if any(char in secret for char in "\r\n") or any(char in settings.relay_user for char in " \t\r\n:"):
        raise ValueError("the relay login and password must be one line (and the login without ':')")
    return layout.postfix_config / RELAY_PASSWORD_FILE, f"[{host}]:{port} {settings.relay_user}:{secret}\n"
