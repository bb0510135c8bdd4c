"""Every operation of the official spec (but backups, recovery and the mail archive) and every legacy
route, each answered once with success and once with an error, every body checked against the official
schema by the `Api` client."""

from __future__ import annotations

import json
import uuid

from tests.api.conftest import Api, LiveServer, Tenant, mailbox_body
from tests.api.spec import SpecValidator

NOT_YET = {
    "mail-list-backups-for-mail-address",
    "mail-recover-mail-address-emails",
    "mail-disable-mail-archive",
}


def scenario(t: Tenant, other: Tenant) -> None:
    project, foreign = t.project_id, other.project_id
    missing = str(uuid.uuid4())
    spam = {
        "spamProtection": {
            "active": True,
            "folder": "spam",
            "relocationMinSpamScore": 5,
            "autoDeleteSpam": False,
        }
    }

    def run(method: str, path: str, body: object = None, expect: int = 200) -> str:
        response = t.api.request(method, path, json=body) if body is not None else t.api.request(method, path)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response.text

    def created(method: str, path: str, body: object) -> str:
        return str(json.loads(run(method, path, body, 201))["id"])

    mailbox = created("POST", f"/v2/projects/{project}/mail-addresses", mailbox_body(f"c1@{t.domain}"))
    legacy_mailbox = created("POST", f"/v2/projects/{project}/mailaddresses", mailbox_body(f"c2@{t.domain}"))
    for path in (f"/v2/projects/{project}/mail-addresses", f"/v2/projects/{project}/mailaddresses"):
        run("POST", path, mailbox_body(f"c1@{t.domain}"), 409)
        run("POST", path, {"address": "x"}, 400)
        run("GET", path)
        run("GET", path.replace(project, foreign), expect=403)
    run("GET", "/v2/mail-addresses/")
    t.api.get("/v2/mail-addresses/", params={"limit": -1})  # 400, validated by the client
    for base in ("/v2/mail-addresses", "/v2/mailaddresses"):
        run("GET", f"{base}/{mailbox}")
        run("GET", f"{base}/{missing}", expect=404)
        run("GET", f"{base}/not-a-uuid", expect=400)
    patches = {
        "address": {"address": f"c3@{t.domain}"},
        "autoresponder": {"autoResponder": {"active": False, "message": "x"}},
        "catch-all": {"active": False},
        "forward-addresses": {"forwardAddresses": ["a@elsewhere.example"]},
        "password": {"password": "a new long secret"},
        "quota": {"quotaInBytes": -1},
        "spam-protection": spam,
    }
    for suffix, body in patches.items():
        run("PATCH", f"/v2/mail-addresses/{mailbox}/{suffix}", body, 204)
        run("PATCH", f"/v2/mail-addresses/{missing}/{suffix}", body, 404)
        run("PATCH", f"/v2/mail-addresses/{mailbox}/{suffix}", {}, 400)
    deprecated = {
        "autoresponder": patches["autoresponder"],
        "catchall": patches["catch-all"],
        "forward-addresses": patches["forward-addresses"],
        "password": patches["password"],
        "quota": patches["quota"],
        "spam-protection": spam,
    }
    for suffix, body in deprecated.items():
        run("PUT", f"/v2/mail-addresses/{mailbox}/{suffix}", body, 200)
        run("PUT", f"/v2/mail-addresses/{missing}/{suffix}", body, 404)
    legacy = {
        "address": {"address": f"c4@{t.domain}"},
        "autoResponder": patches["autoresponder"],
        "catchAll": patches["catch-all"],
        "forwardaddresses": patches["forward-addresses"],
        "password": patches["password"],
        "quota": patches["quota"],
        "spamprotection": spam,
    }
    for suffix, body in legacy.items():
        run("PUT", f"/v2/mailaddresses/{legacy_mailbox}/{suffix}", body, 200)
        run("PUT", f"/v2/mailaddresses/{missing}/{suffix}", body, 404)
        run("PUT", f"/v2/mailaddresses/{legacy_mailbox}/{suffix}", {}, 400)
    tiers = json.loads(run("GET", "/v2/mail-rate-limits"))
    run("GET", f"/v2/mail-rate-limits/{tiers[0]['id']}")
    run("GET", f"/v2/mail-rate-limits/{missing}", expect=404)
    rate = f"/v2/mail-addresses/{mailbox}/actions/request-rate-limit-change"
    run("POST", rate, {"rateLimitId": tiers[-1]["id"]}, 204)
    run("POST", rate, {"rateLimitId": missing}, 400)
    run("POST", rate.replace(mailbox, missing), {"rateLimitId": tiers[-1]["id"]}, 404)

    box_body = {"description": "app", "password": "a strong secret"}
    box = created("POST", f"/v2/projects/{project}/delivery-boxes", box_body)
    legacy_box = created("POST", f"/v2/projects/{project}/deliveryboxes", box_body)
    for path in (f"/v2/projects/{project}/delivery-boxes", f"/v2/projects/{project}/deliveryboxes"):
        run("POST", path, {"description": "app"}, 400)
        run("GET", path)
        run("GET", path.replace(project, foreign), expect=403)
    for base in ("/v2/delivery-boxes", "/v2/deliveryboxes"):
        run("GET", f"{base}/{box}")
        run("GET", f"{base}/{missing}", expect=404)
    for field, body in (
        ("description", {"description": "cron"}),
        ("password", {"password": "another secret"}),
    ):
        run("PATCH", f"/v2/delivery-boxes/{box}/{field}", body, 204)
        run("PATCH", f"/v2/delivery-boxes/{missing}/{field}", body, 404)
        run("PUT", f"/v2/deliveryboxes/{box}/{field}", body, 200)
        run("PUT", f"/v2/deliveryboxes/{missing}/{field}", body, 404)
        run("PATCH", f"/v2/delivery-boxes/{box}/{field}", {}, 400)

    for path in (f"/v2/projects/{project}/mail-settings", f"/v2/projects/{project}/mailsettings"):
        run("GET", path)
        run("GET", path.replace(project, foreign), expect=403)
    for method, status in (("PATCH", 204), ("PUT", 200)):
        run(method, f"/v2/projects/{project}/mail-settings/blacklist", {"blacklist": ["a@b.example"]}, status)
        run(
            method, f"/v2/projects/{project}/mail-settings/blacklist", {"blacklist": ["пошта@b.example"]}, 400
        )
        run(method, f"/v2/projects/{foreign}/mail-settings/whitelist", {"whitelist": []}, 403)
    for kind in ("blacklist", "whitelist"):
        run("PUT", f"/v2/projects/{project}/mailsettings/{kind}", {kind: ["a@b.example"]}, 200)
        run("PUT", f"/v2/projects/{project}/mailsettings/{kind}", {kind: ["bad"]}, 400)

    run("GET", f"/v2/projects/{project}")
    run("GET", f"/v2/projects/{foreign}", expect=403)
    run("GET", "/v2/projects")
    t.api.get("/v2/projects", params={"sort": "bogus"})

    for base in ("/v2/delivery-boxes", "/v2/deliveryboxes"):
        run("DELETE", f"{base}/{missing}", expect=404)
    run("DELETE", f"/v2/delivery-boxes/{box}", expect=204)
    run("DELETE", f"/v2/deliveryboxes/{legacy_box}", expect=204)
    for base in ("/v2/mail-addresses", "/v2/mailaddresses"):
        run("DELETE", f"{base}/{missing}", expect=404)
    run("DELETE", f"/v2/mail-addresses/{mailbox}", expect=204)
    run("DELETE", f"/v2/mailaddresses/{legacy_mailbox}", expect=204)


def test_every_operation_answers_success_and_errors_in_the_official_shapes(
    tenant: Tenant, other_tenant: Tenant, validator: SpecValidator, live_server: LiveServer
) -> None:
    validator.seen.clear()
    scenario(tenant, other_tenant)
    unauthenticated = Api(live_server, validator, None)
    for path in ("/v2/mail-rate-limits", "/v2/projects", f"/v2/projects/{tenant.project_id}/mail-addresses"):
        assert unauthenticated.get(path).status_code == 401
    seen_ok = {op for op, status in validator.seen if status < 300}
    seen_error = {op for op, status in validator.seen if status >= 400}
    official = validator.official_operation_ids() - NOT_YET
    # Postwerk's own extensions have no official counterpart: they are left out of this comparison.
    own = {
        operation["operationId"]
        for item in validator.own_document["paths"].values()
        for operation in item.values()
    } - set(validator.extensions)
    assert official <= own, f"operations Postwerk lacks: {sorted(official - own)}"
    assert not (own & NOT_YET), "routes announced before they exist"
    assert own - seen_ok == set(), f"never answered with success: {sorted(own - seen_ok)}"
    assert own - seen_error == set(), f"never answered with an error: {sorted(own - seen_error)}"
    legacy = {op for op in own if op.startswith("legacy-")}
    assert len(legacy) == 15
