"""Project mail settings: the sender blacklist and whitelist."""

from __future__ import annotations

from tests.api.conftest import Tenant


def test_blacklist_and_whitelist(tenant: Tenant) -> None:
    base = f"/v2/projects/{tenant.project_id}/mail-settings"
    assert tenant.api.get(base).json() == {"projectId": tenant.project_id, "blacklist": [], "whitelist": []}
    assert (
        tenant.api.patch(
            f"{base}/blacklist", json={"blacklist": ["spam@*.example", "*@bad.example"]}
        ).status_code
        == 204
    )
    assert tenant.api.patch(f"{base}/whitelist", json={"whitelist": ["boss@пример.рф"]}).status_code == 204
    got = tenant.api.get(f"/v2/projects/{tenant.short_id}/mail-settings").json()
    assert got["blacklist"] == ["spam@*.example", "*@bad.example"]
    assert got["whitelist"] == ["boss@xn--e1afmkfd.xn--p1ai"]  # stored and returned as A-labels


def test_bad_entries_are_refused(tenant: Tenant) -> None:
    base = f"/v2/projects/{tenant.project_id}/mail-settings"
    utf8_local = tenant.api.patch(f"{base}/blacklist", json={"blacklist": ["пошта@example.org"]})
    assert utf8_local.status_code == 400
    assert utf8_local.json()["validationErrors"][0]["path"] == ".blacklist[0]"
    for entry in ("no-at-sign", "a@b", "a b@example.org"):
        assert tenant.api.patch(f"{base}/blacklist", json={"blacklist": [entry]}).status_code == 400
    mismatch = tenant.api.patch(f"{base}/blacklist", json={"whitelist": ["a@example.org"]})
    assert mismatch.status_code == 400
    assert tenant.api.patch(f"{base}/greylist", json={"greylist": []}).status_code == 400


def test_deprecated_puts_answer_200(tenant: Tenant) -> None:
    project = tenant.project_id
    put = tenant.api.put(
        f"/v2/projects/{project}/mailsettings/blacklist", json={"blacklist": ["a@x.example"]}
    )
    assert put.status_code == 200
    put = tenant.api.put(
        f"/v2/projects/{project}/mailsettings/whitelist", json={"whitelist": ["b@x.example"]}
    )
    assert put.status_code == 200
    put = tenant.api.put(
        f"/v2/projects/{project}/mail-settings/whitelist", json={"whitelist": ["c@x.example"]}
    )
    assert put.status_code == 200
    got = tenant.api.get(f"/v2/projects/{project}/mailsettings").json()
    assert got["blacklist"] == ["a@x.example"] and got["whitelist"] == ["c@x.example"]


def test_entries_are_matched_whole_and_the_path_names_the_list(tenant: Tenant) -> None:
    base = f"/v2/projects/{tenant.project_id}/mail-settings"
    for entry in ("a@b.example\n", "a@b.example\r", "a\n@b.example"):
        assert tenant.api.patch(f"{base}/blacklist", json={"blacklist": [entry]}).status_code == 400, entry
    both = {"blacklist": ["black@x.example"], "whitelist": ["white@x.example"]}
    assert tenant.api.patch(f"{base}/whitelist", json=both).status_code == 204
    assert tenant.api.get(base).json()["whitelist"] == ["white@x.example"]
    assert tenant.api.get(base).json()["blacklist"] == []
