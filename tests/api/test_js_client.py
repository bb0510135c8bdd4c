"""Smoke test with mittwald's official JS client (@mittwald/api-client, pinned in tests/js/package.json).

Install its dependencies with `npm ci --prefix tests/js --no-audit --no-fund`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.api.conftest import LiveServer, Tenant
from tests.conftest import REPO, missing

JS_DIR = REPO / "tests" / "js"
SMOKE_TIMEOUT = 60.0

pytestmark = pytest.mark.slow


def run_smoke(
    live_server: LiveServer, tenant: Tenant
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed")
    if not (JS_DIR / "node_modules" / "@mittwald" / "api-client").is_dir():
        missing("the JS client is not installed: run `npm ci --prefix tests/js --no-audit --no-fund`")
    assert node is not None
    env = {
        "PATH": os.environ.get("PATH", ""),
        "POSTWERK_BASE_URL": live_server.base_url,
        "POSTWERK_TOKEN": tenant.token,
        "POSTWERK_PROJECT_ID": tenant.project_id,
        "POSTWERK_DOMAIN": tenant.domain,
    }
    completed = subprocess.run(
        [node, str(JS_DIR / "smoke.mjs")],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, f"no output from smoke.mjs (exit {completed.returncode}): {completed.stderr}"
    return completed, json.loads(lines[-1])


def test_official_js_client_round_trip(live_server: LiveServer, tenant: Tenant) -> None:
    completed, results = run_smoke(live_server, tenant)
    assert completed.returncode == 0, f"{results}\n{completed.stderr}"
    assert results["ok"] is True
    assert results["mailboxAddress"].endswith(f"@{tenant.domain}")
    assert results["listedIds"] == sorted([results["mailboxId"], results["forwardId"]])
    assert results["totalCount"] == 2
    assert results["totalCountAfterDelete"] == 1
    assert results["statusAfterDelete"] == 404
