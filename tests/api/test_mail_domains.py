"""Postwerk's extension route `GET /v2/projects/{projectId}/mail-domains`: a project's domains with the DNS
records to publish, on both databases, checked against Postwerk's own document (errors against mittwald's
shapes) by the `Api` client."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import delete, select

from postwerk.domain.dkim import RSA_BITS
from postwerk.service import dkim as dkim_service
from postwerk.store.tables import dkim_keys, domains
from tests.api.conftest import Api, LiveServer, Tenant
from tests.api.spec import SpecValidator


def _records(api: Api, project: str) -> list[dict[str, object]]:
    response = api.get(f"/v2/projects/{project}/mail-domains")
    assert response.status_code == 200, response.text
    body: list[dict[str, object]] = response.json()
    return body


def test_a_project_lists_its_domains_with_their_records(tenant: Tenant, live_server: LiveServer) -> None:
    listed = {item["asciiDomain"]: item for item in _records(tenant.api, tenant.project_id)}
    idn_ascii = next(name for name in listed if str(name).startswith("xn--"))
    assert set(listed) == {tenant.domain, idn_ascii}
    assert listed[idn_ascii]["domain"] == tenant.idn_domain
    host = live_server.context.public_host.hostname
    for ascii_name, item in listed.items():
        assert item["projectId"] == tenant.project_id
        keys = item["dkimKeys"]
        assert isinstance(keys, list) and len(keys) == 1 and keys[0]["status"] == "active"
        selector = keys[0]["selector"]
        records = item["records"]
        assert isinstance(records, list)
        by_purpose: dict[str, list[dict[str, object]]] = {}
        for record in records:
            by_purpose.setdefault(record["purpose"], []).append(record)
            assert str(record["name"]).isascii() and str(record["value"]).isascii()  # A-labels only
        assert [(r["type"], r["name"], r["value"], r["priority"]) for r in by_purpose["mx"]] == [
            ("MX", ascii_name, host, 10)
        ]
        assert [r["value"] for r in by_purpose["spf"]] == ["v=spf1 mx -all"]
        (dkim,) = by_purpose["dkim"]
        assert dkim["name"] == f"{selector}._domainkey.{ascii_name}"
        text = str(dkim["value"])
        assert text.startswith("v=DKIM1; k=rsa; p=")
        public = load_der_public_key(base64.b64decode(text.split("p=", 1)[1]))
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == RSA_BITS
        assert [r["name"] for r in by_purpose["dmarc"]] == [f"_dmarc.{ascii_name}"]
        assert str(by_purpose["dmarc"][0]["value"]).startswith("v=DMARC1; p=")
        assert {(r["name"], r["port"], r["value"]) for r in by_purpose["srv"]} == {
            (f"_submissions._tcp.{ascii_name}", 465, host),
            (f"_submission._tcp.{ascii_name}", 587, host),
            (f"_imaps._tcp.{ascii_name}", 993, host),
            (f"_imap._tcp.{ascii_name}", 143, host),
            (f"_pop3s._tcp.{ascii_name}", 995, host),
            (f"_pop3._tcp.{ascii_name}", 110, host),
        }
        assert {(r["type"], r["name"]) for r in by_purpose["autoconfig"]} == {
            ("CNAME", f"autoconfig.{ascii_name}"),
            ("CNAME", f"autodiscover.{ascii_name}"),
        }
    # The short id names the project too; never a private key in the answer.
    response = tenant.api.get(f"/v2/projects/{tenant.short_id}/mail-domains")
    assert response.status_code == 200 and "PRIVATE" not in response.text
    with live_server.context.db.read() as connection:
        private_keys = connection.execute(select(dkim_keys.c.private_key)).scalars().all()
    body = response.text.replace("\\n", "\n")
    assert private_keys and not any(key.split("\n")[1] in body for key in private_keys)


def test_same_auth_and_errors_as_the_project_routes(
    tenant: Tenant, other_tenant: Tenant, live_server: LiveServer, validator: SpecValidator
) -> None:
    assert tenant.api.get(f"/v2/projects/{other_tenant.project_id}/mail-domains").status_code == 403
    assert tenant.api.get("/v2/projects/p-000000/mail-domains").status_code == 403
    assert tenant.api.get("/v2/projects/not-a-project/mail-domains").status_code == 403
    assert (
        Api(live_server, validator, None).get(f"/v2/projects/{tenant.project_id}/mail-domains").status_code
        == 401
    )
    assert (
        Api(live_server, validator, "pw_wrong")
        .get(f"/v2/projects/{tenant.project_id}/mail-domains")
        .status_code
        == 401
    )
    admin = Api(live_server, validator, live_server.admin_token)
    assert len(_records(admin, other_tenant.project_id)) == 2


def test_a_domain_from_before_dkim_gets_its_key_on_first_read(
    tenant: Tenant, live_server: LiveServer
) -> None:
    context = live_server.context
    with context.db.write() as connection:
        domain_id = connection.execute(
            select(domains.c.id).where(domains.c.name_ascii == tenant.domain)
        ).scalar_one()
        connection.execute(delete(dkim_keys).where(dkim_keys.c.domain_id == domain_id))
    first = {item["asciiDomain"]: item for item in _records(tenant.api, tenant.project_id)}[tenant.domain]
    again = {item["asciiDomain"]: item for item in _records(tenant.api, tenant.project_id)}[tenant.domain]
    assert first == again
    assert [key["status"] for key in first["dkimKeys"]] == ["active"]  # type: ignore[index]


def test_rotation_lists_the_retired_key_until_it_is_removed(tenant: Tenant, live_server: LiveServer) -> None:
    context = live_server.context
    (before,) = dkim_service.domain_records(context, tenant.domain).keys
    prepared = dkim_service.rotate(context, tenant.domain, prepare=True)
    assert prepared.status == "next" and prepared.selector != before.selector
    activated = dkim_service.rotate(context, tenant.domain)
    assert activated.selector == prepared.selector and activated.status == "active"
    item = {item["asciiDomain"]: item for item in _records(tenant.api, tenant.project_id)}[tenant.domain]
    assert [(k["selector"], k["status"]) for k in item["dkimKeys"]] == [  # type: ignore[union-attr]
        (prepared.selector, "active"),
        (before.selector, "retired"),
    ]
    names = [r["name"] for r in item["records"] if r["purpose"] == "dkim"]  # type: ignore[union-attr]
    assert names == [
        f"{prepared.selector}._domainkey.{tenant.domain}",
        f"{before.selector}._domainkey.{tenant.domain}",
    ]
    dkim_service.remove_key(context, tenant.domain, before.selector)
    item = {item["asciiDomain"]: item for item in _records(tenant.api, tenant.project_id)}[tenant.domain]
    assert [k["selector"] for k in item["dkimKeys"]] == [prepared.selector]  # type: ignore[union-attr]
