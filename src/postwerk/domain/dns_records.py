"""The DNS records a customer publishes for a hosted domain, so that mail reaches Postwerk, leaves it
trusted (SPF, DKIM, DMARC) and mail clients find their servers (RFC 6186 SRV, autoconfig).

Names and targets are A-labels: a zone holds no Unicode (`xn--bcher-kva.example`, never `bücher.example`).

- MX: the public host name (`--public-hostname`, default the `--mail-hostname`), priority 10.
- SPF: `v=spf1 ip4:... ip6:... -all` when the public addresses are known (`--public-ipv4`,
  `--public-ipv6`: no DNS lookup for the receiver), else `v=spf1 mx -all`. With a `--relay-host`, mail
  leaves from the relay's addresses: the provider adds the relay's own SPF (`include:`) to this record.
- DKIM: one TXT record per listed key (`<selector>._domainkey.<domain>`; the active key, a prepared next key
  and retired keys not yet removed; see `domain.dkim`).
- DMARC: `v=DMARC1; p=quarantine; adkim=r; aspf=r`: every message that leaves through Postwerk is signed and
  comes from the MX's addresses, so a message that passes neither is forged. A customer who also sends
  through other services (a newsletter tool) starts with `p=none` until those are aligned, and may add
  `rua=mailto:...` for aggregate reports.
- SRV (RFC 6186, RFC 8314): `_submissions._tcp` (465), `_submission._tcp` (587), `_imaps._tcp` (993),
  `_imap._tcp` (143), `_pop3s._tcp` (995), `_pop3._tcp` (110), each to the public host name. The standard
  ports: the public side of a mail node, whatever local ports its servers listen on behind it.
- `autoconfig` and `autodiscover` CNAMEs to the public host name, where Thunderbird-style autoconfig and
  Outlook's autodiscover look (the host must answer those requests; Postwerk itself does not serve them yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from postwerk.domain.addresses import DomainName
from postwerk.domain.dkim import record_name, record_text

TTL = 3600
MX_PRIORITY = 10
DMARC = "v=DMARC1; p=quarantine; adkim=r; aspf=r"
TXT_CHUNK = 255  # longest character-string of a TXT record (RFC 1035 3.3)

# (service label, port, what it is), in the order clients should prefer them (RFC 8314: implicit TLS first).
SRV_SERVICES = (
    ("_submissions._tcp", 465, "SMTP submission over TLS"),
    ("_submission._tcp", 587, "SMTP submission with STARTTLS"),
    ("_imaps._tcp", 993, "IMAP over TLS"),
    ("_imap._tcp", 143, "IMAP with STARTTLS"),
    ("_pop3s._tcp", 995, "POP3 over TLS"),
    ("_pop3._tcp", 110, "POP3 with STARTTLS"),
)


@dataclass(frozen=True)
class PublicHost:
    """How the world reaches the mail node: its host name and, when known, its addresses."""

    hostname: str
    ipv4: str | None = None
    ipv6: str | None = None


@dataclass(frozen=True)
class ListedKey:
    """A DKIM key as its record shows it (never the private half)."""

    selector: str
    algorithm: str
    public_key: str
    status: str


@dataclass(frozen=True)
class DnsRecord:
    purpose: str  # mx, spf, dkim, dmarc, srv, autoconfig
    type: str
    name: str  # fully qualified, A-labels, without the trailing dot
    value: str  # the text (TXT), the target host (MX, SRV, CNAME)
    priority: int | None = None
    weight: int | None = None
    port: int | None = None
    note: str | None = None

    def zone_line(self) -> str:
        """The record as a line of a zone file (BIND syntax)."""
        owner = f"{self.name}."
        if self.type == "TXT":
            data = " ".join(
                _quoted(self.value[i : i + TXT_CHUNK]) for i in range(0, len(self.value), TXT_CHUNK)
            )
        elif self.type == "MX":
            data = f"{self.priority} {self.value}."
        elif self.type == "SRV":
            data = f"{self.priority} {self.weight} {self.port} {self.value}."
        else:
            data = f"{self.value}."
        return f"{owner} {TTL} IN {self.type} {data}"

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "purpose": self.purpose,
            "type": self.type,
            "name": self.name,
            "value": self.value,
            "ttl": TTL,
        }
        for key in ("priority", "weight", "port", "note"):
            if getattr(self, key) is not None:
                result[key] = getattr(self, key)
        result["zone"] = self.zone_line()
        return result


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def spf_text(host: PublicHost) -> str:
    addresses = [f"ip4:{host.ipv4}"] if host.ipv4 else []
    if host.ipv6:
        addresses.append(f"ip6:{host.ipv6}")
    return "v=spf1 " + " ".join(addresses or ["mx"]) + " -all"


def records_for(domain: DomainName, host: PublicHost, keys: Sequence[ListedKey]) -> list[DnsRecord]:
    name, target = domain.ascii, host.hostname
    records = [
        DnsRecord("mx", "MX", name, target, priority=MX_PRIORITY),
        DnsRecord("spf", "TXT", name, spf_text(host)),
    ]
    for key in keys:
        note = {
            "next": "prepared by `dkim rotate --prepare`: publish it now, it signs after the next rotate",
            "retired": "signs no more; keep it published for a week after the rotation, then delete it",
        }.get(key.status)
        records.append(
            DnsRecord(
                "dkim",
                "TXT",
                record_name(key.selector, name),
                record_text(key.algorithm, key.public_key),
                note=note,
            )
        )
    records.append(DnsRecord("dmarc", "TXT", f"_dmarc.{name}", DMARC))
    for service, port, _ in SRV_SERVICES:
        records.append(DnsRecord("srv", "SRV", f"{service}.{name}", target, priority=0, weight=1, port=port))
    for label in ("autoconfig", "autodiscover"):
        records.append(DnsRecord("autoconfig", "CNAME", f"{label}.{name}", target))
    return records
