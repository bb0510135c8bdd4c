"""The `postwerk` command as a provider uses it: real processes on a real data folder."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.conftest import free_port

TIMEOUT = 60


def postwerk(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSTWERK_DATA_DIR": str(data_dir)}
    env.pop("POSTWERK_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "postwerk.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_admin_commands(tmp_path: Path) -> None:
    created = json.loads(postwerk(tmp_path, "project", "create", "--description", "Shop", "--json").stdout)
    assert created["shortId"].startswith("p-") and len(created["id"]) == 36
    added = json.loads(
        postwerk(
            tmp_path, "domain", "add", "Bücher.Example", "--project", created["shortId"], "--json"
        ).stdout
    )
    assert added == {"domain": "bücher.example", "ascii": "xn--bcher-kva.example"}
    again = postwerk(tmp_path, "domain", "add", "xn--bcher-kva.example", "--project", created["id"], "--json")
    assert json.loads(again.stdout)["ascii"] == "xn--bcher-kva.example"
    other = json.loads(postwerk(tmp_path, "project", "create", "--description", "Other", "--json").stdout)
    taken = postwerk(tmp_path, "domain", "add", "bücher.example", "--project", other["id"], check=False)
    assert taken.returncode == 1 and "another project" in taken.stderr
    issued = json.loads(
        postwerk(tmp_path, "token", "create", "--project", created["id"], "--read-only", "--json").stdout
    )
    assert len(issued["token"]) > 40
    tokens = json.loads(postwerk(tmp_path, "token", "list", "--json").stdout)
    assert [t["id"] for t in tokens] == [issued["id"]] and tokens[0]["readOnly"] is True
    assert issued["token"] not in postwerk(tmp_path, "token", "list").stdout
    postwerk(tmp_path, "token", "revoke", issued["id"])
    assert json.loads(postwerk(tmp_path, "token", "list", "--json").stdout) == []
    assert postwerk(tmp_path, "token", "revoke", issued["id"], check=False).returncode == 1
    listed_projects = json.loads(postwerk(tmp_path, "project", "list", "--json").stdout)
    assert {p["shortId"] for p in listed_projects} == {created["shortId"], other["shortId"]}
    listed = json.loads(postwerk(tmp_path, "domain", "list", "--json").stdout)
    assert [item["ascii"] for item in listed] == ["xn--bcher-kva.example"]
    postwerk(tmp_path, "domain", "remove", "bücher.example")
    postwerk(tmp_path, "project", "delete", created["id"])
    missing = postwerk(tmp_path, "project", "delete", created["id"], check=False)
    assert missing.returncode == 1
    assert postwerk(tmp_path, "db", "upgrade").returncode == 0
    bad = postwerk(tmp_path, "domain", "add", "not a domain", "--project", other["id"], check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_two_domains_that_fold_alike_are_never_both_hosted(tmp_path: Path) -> None:
    """Postfix asks for `straße.example` as `strasse.example` (full case folding): hosting both would hand
    mail written in UTF-8 to one of them to the other, whoever holds it."""
    project = json.loads(postwerk(tmp_path, "project", "create", "--description", "Shop", "--json").stdout)
    postwerk(tmp_path, "domain", "add", "straße.example", "--project", project["id"])
    for twin in ("strasse.example", "STRASSE.example"):
        refused = postwerk(tmp_path, "domain", "add", twin, "--project", project["id"], check=False)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "beside straße.example" in refused.stderr and "strasse.example" in refused.stderr
    postwerk(tmp_path, "domain", "remove", "straße.example")
    postwerk(tmp_path, "domain", "add", "strasse.example", "--project", project["id"])
    a_label = "xn--strae-oqa.example"
    refused = postwerk(tmp_path, "domain", "add", a_label, "--project", project["id"], check=False)
    assert refused.returncode == 1 and "beside strasse.example" in refused.stderr


def test_serve_first_start_writes_an_owner_only_token_file(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "POSTWERK_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen(
        # The API alone: the mail servers' own start is tested in tests/mail/.
        [sys.executable, "-m", "postwerk.cli", "serve", "--role", "api", "--api", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        token_file = tmp_path / "data" / "admin-token"
        deadline = time.monotonic() + TIMEOUT
        response = None
        while time.monotonic() < deadline:
            if token_file.exists():
                try:
                    token = token_file.read_text().strip()
                    response = httpx.get(
                        f"http://127.0.0.1:{port}/v2/projects", headers={"x-access-token": token}, timeout=5
                    )
                    break
                except httpx.TransportError:
                    pass
            assert process.poll() is None, "postwerk serve exited"
            time.sleep(0.1)
        assert response is not None and response.status_code == 200
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert (tmp_path / "data" / "postwerk.db").exists()
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=TIMEOUT)
    assert str(token_file) in output or "admin-token" in output
    assert token not in output


def test_domain_records_and_dkim_rotation(tmp_path: Path) -> None:
    project = json.loads(postwerk(tmp_path, "project", "create", "--description", "Shop", "--json").stdout)
    postwerk(tmp_path, "domain", "add", "bücher.example", "--project", project["id"])
    public = (
        "--public-hostname",
        "MX.Provider.example",
        "--public-ipv4",
        "192.0.2.25",
        "--public-ipv6",
        "2001:db8::25",
    )
    records = json.loads(postwerk(tmp_path, "domain", "records", "bücher.example", *public, "--json").stdout)
    assert (records["domain"], records["asciiDomain"]) == ("bücher.example", "xn--bcher-kva.example")
    ((key),) = records["dkimKeys"]
    assert key["status"] == "active" and key["selector"].startswith("pw")
    by_purpose = {r["purpose"]: r for r in records["records"]}
    assert by_purpose["mx"]["value"] == "mx.provider.example"
    assert by_purpose["spf"]["value"] == "v=spf1 ip4:192.0.2.25 ip6:2001:db8::25 -all"
    assert by_purpose["dkim"]["name"] == f"{key['selector']}._domainkey.xn--bcher-kva.example"
    assert all(r["name"].endswith("xn--bcher-kva.example") for r in records["records"])
    # The human table: every record, and the zone-file lines to paste; the mail hostname is the default.
    table = postwerk(
        tmp_path, "domain", "records", "xn--bcher-kva.example", "--mail-hostname", "mx.default.example"
    )
    assert "xn--bcher-kva.example. 3600 IN MX 10 mx.default.example." in table.stdout
    assert "v=spf1 mx -all" in table.stdout and "_submissions._tcp.xn--bcher-kva.example" in table.stdout

    prepared = json.loads(
        postwerk(tmp_path, "domain", "dkim", "rotate", "bücher.example", "--prepare", "--json").stdout
    )
    assert prepared["status"] == "next" and prepared["selector"] != key["selector"]
    again = postwerk(tmp_path, "domain", "dkim", "rotate", "bücher.example", "--prepare", check=False)
    assert again.returncode == 1 and "prepared key already" in again.stderr
    active = json.loads(postwerk(tmp_path, "domain", "dkim", "rotate", "bücher.example", "--json").stdout)
    assert active == {"domain": "bücher.example", "selector": prepared["selector"], "status": "active"}
    listed = json.loads(postwerk(tmp_path, "domain", "records", "bücher.example", "--json").stdout)
    assert [(k["selector"], k["status"]) for k in listed["dkimKeys"]] == [
        (prepared["selector"], "active"),
        (key["selector"], "retired"),
    ]
    refused = postwerk(
        tmp_path, "domain", "dkim", "remove", "bücher.example", prepared["selector"], check=False
    )
    assert refused.returncode == 1 and "rotate first" in refused.stderr
    postwerk(tmp_path, "domain", "dkim", "remove", "bücher.example", key["selector"])
    listed = json.loads(postwerk(tmp_path, "domain", "records", "bücher.example", "--json").stdout)
    assert [k["selector"] for k in listed["dkimKeys"]] == [prepared["selector"]]
    assert [r["purpose"] for r in listed["records"]].count("dkim") == 1

    bad = postwerk(
        tmp_path, "domain", "records", "bücher.example", "--public-ipv4", "2001:db8::1", check=False
    )
    assert bad.returncode == 2 and "IPv4" in bad.stderr
    unknown = postwerk(tmp_path, "domain", "records", "nowhere.example", check=False)
    assert unknown.returncode == 1 and "not hosted" in unknown.stderr
    every_output = table.stdout + json.dumps(listed)
    assert "PRIVATE KEY" not in every_output
