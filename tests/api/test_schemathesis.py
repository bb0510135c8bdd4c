"""Schemathesis against Postwerk's OWN OpenAPI document (`/v2/openapi.json`), served by the real uvicorn
server of `live_server`, on SQLite and on PostgreSQL.

Every operation of the document is exercised with a bounded, seeded and derandomised set of requests,
valid and invalid: the examples phase (explicit examples for the creations and sender lists, see
`_happy_paths`), the coverage phase (boundary and invalid values of every parameter and body field, and
unexpected methods) and a fuzzing phase of at most `MAX_EXAMPLES` per operation and mode. The stateful
phase is off. Each response must pass the checks named in `CHECKS`: no 5xx, only documented status codes,
content types and headers, and bodies that match the schema the document gives for that status.

To reach real objects and not only 400/403/404, generated path parameters are sometimes replaced by the
ids of a project with a domain, mailboxes, a forwarding address and delivery boxes created beforehand
through the service layer, and generated bodies sometimes get plausible values (an address on that
domain, a long password, ...). DELETE operations get objects of their own, so the objects the other
operations use stay in place.

All traffic goes to 127.0.0.1 (the live server) through one session that ignores proxy settings of the
environment; nothing else is contacted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from postwerk.service import delivery_boxes as box_service
from postwerk.service import mail_addresses as address_service
from postwerk.service import projects as project_service
from postwerk.service.access import Caller
from tests.api.conftest import LiveServer

pytestmark = pytest.mark.slow

SEED = 20_240_611
# Per operation and generation mode, for the fuzzing phase; the coverage phase adds its own bounded set.
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SEED_PASSWORD = "seeded mailbox secret"  # set through the service layer only, never sent over HTTP
GIB = 1024**3


@dataclass(frozen=True)
class SeededObjects:
    """Objects that generated requests are steered to."""

    project_ids: tuple[str, ...]  # the project's UUID and its short id
    domain: str
    addresses: tuple[str, ...]
    boxes: tuple[str, ...]
    # Each DELETE operation gets objects of its own (by path template), so deleting never takes away the
    # objects that the other operations are steered to.
    doomed: dict[str, tuple[str, ...]]
    rate_limit_ids: tuple[str, ...]


@pytest.fixture(scope="session")
def seeded(live_server: LiveServer) -> SeededObjects:
    context = live_server.context
    scope = Caller(token=live_server.admin_token)
    project_id, short_id = project_service.create_project(context, "schemathesis project")
    domain = f"{short_id.removeprefix('p-')}.fuzz.example"
    project_service.add_domain(context, domain, project_id)

    def mailbox(local: str) -> str:
        return address_service.create(
            context,
            scope,
            project_id,
            address_service.NewAddress(
                address=f"{local}@{domain}",
                mailbox=address_service.NewMailbox(password=SEED_PASSWORD, quota_in_bytes=2 * GIB),
            ),
        )

    def forwarder(local: str) -> str:
        return address_service.create(
            context,
            scope,
            project_id,
            address_service.NewAddress(
                address=f"{local}@{domain}", forward_addresses=[f"{local}@elsewhere.example"]
            ),
        )

    def box(name: str) -> str:
        return box_service.create(context, scope, project_id, name, SEED_PASSWORD)

    doomed: dict[str, tuple[str, ...]] = {}
    for n, path in enumerate(("/v2/mail-addresses/{mailAddressId}", "/v2/mailaddresses/{mailAddressId}")):
        doomed[path] = (mailbox(f"doomed-{n}-a"), mailbox(f"doomed-{n}-b"), forwarder(f"doomed-{n}-c"))
    for n, path in enumerate(("/v2/delivery-boxes/{deliveryBoxId}", "/v2/deliveryboxes/{deliveryBoxId}")):
        doomed[path] = tuple(box(f"doomed {n} {k}") for k in range(3))
    return SeededObjects(
        project_ids=(project_id, short_id),
        domain=domain,
        addresses=(mailbox("inbox-a"), mailbox("inbox-b"), forwarder("forward-a")),
        boxes=(box("box a"), box("box b")),
        doomed=doomed,
        rate_limit_ids=tuple(tier.id for tier in context.rate_limits.tiers),
    )


def _token(value: Any) -> str:
    """A short, stable token derived from a generated value (equal inputs give equal outputs)."""
    return hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).hexdigest()[:10]


def _plausible(seeded: SeededObjects, node: Any) -> Any:
    """`node` with the string values of the fields the domain checks replaced by acceptable ones (an
    address on the seeded domain, a long password, a valid quota, ...); other values and all values of a
    wrong type stay as generated. Generated data alone almost never passes these checks."""
    if isinstance(node, list):
        return [_plausible(seeded, item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        token = _token(value)
        if key == "address" and isinstance(value, str):
            result[key] = f"fz{token}@{seeded.domain}"
        elif key == "password" and isinstance(value, str):
            result[key] = f"fuzzed password {token}"
        elif key == "quotaInBytes" and isinstance(value, int) and not isinstance(value, bool):
            result[key] = 2 * GIB
        elif key == "forwardAddresses" and isinstance(value, list):
            result[key] = [f"fz{_token(item)}@elsewhere.example" for item in value]
        elif key in ("blacklist", "whitelist") and isinstance(value, list):
            result[key] = [f"fz{_token(item)}@senders.example" for item in value]
        elif key == "rateLimitId" and isinstance(value, str):
            result[key] = seeded.rate_limit_ids[int(token, 16) % len(seeded.rate_limit_ids)]
        else:
            result[key] = _plausible(seeded, value)
    return result


def _steer(seeded: SeededObjects, schema: Any, token: str) -> None:
    """Register schema-local hooks that point some generated requests at the seeded objects. The generated
    values stay among the choices: they are what reaches the 400 and 404 paths."""

    @schema.hook
    def flatmap_path_parameters(
        context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[Any]:
        if not path_parameters or context.operation is None:
            return st.just(path_parameters)
        operation = context.operation
        deleting = operation.method.upper() == "DELETE"
        known = {
            "projectId": seeded.project_ids,
            "mailAddressId": seeded.addresses,
            "deliveryBoxId": seeded.boxes,
            "mailRateLimitId": seeded.rate_limit_ids,
        }
        strategies = {}
        for name, value in path_parameters.items():
            choices = seeded.doomed.get(operation.path, ()) if deleting else known.get(name, ())
            strategies[name] = st.sampled_from((value, *choices))
        return st.fixed_dictionaries(strategies)

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
        return st.sampled_from((body, _plausible(seeded, body)))

    @schema.hook
    def before_add_examples(context: schemathesis.HookContext, examples: list[schemathesis.Case]) -> None:
        if context.operation is None:
            return
        operation_id = context.operation.definition.raw.get("operationId", "")
        for path_parameters, body in _happy_paths(seeded, operation_id):
            # Explicit cases do not get the configured headers, so they carry the token themselves.
            examples.append(
                context.operation.Case(
                    path_parameters=path_parameters, body=body, headers={"x-access-token": token}
                )
            )


def _happy_paths(seeded: SeededObjects, operation_id: str) -> list[tuple[dict[str, str], Any]]:
    """Explicit examples for the operations that generated data (almost) never gets through: the creations
    and the sender lists. Each runs once, in the examples phase."""
    project = {"projectId": seeded.project_ids[0]}
    by_short_id = {"projectId": seeded.project_ids[1]}
    tag = "legacy" if operation_id.startswith("legacy-") else "current"  # one address per route

    def mailbox(local: str) -> dict[str, Any]:
        return {
            "address": f"{local}-{tag}@{seeded.domain}",
            "mailbox": {"password": "§ explicit example", "quotaInBytes": 2 * GIB},
        }

    def forwarder(local: str) -> dict[str, Any]:
        return {"address": f"{local}-{tag}@{seeded.domain}", "forwardAddresses": ["x@elsewhere.example"]}

    senders = ["spammer@senders.example", "*@bulk.example"]
    happy: dict[str, list[tuple[dict[str, str], Any]]] = {
        "mail-create-mail-address": [(project, mailbox("made")), (by_short_id, forwarder("fwd"))],
        "mail-create-deliverybox": [(project, {"description": "made", "password": "§ explicit example"})],
        "mail-update-project-mail-setting": [
            ({**project, "mailSetting": "blacklist"}, {"blacklist": senders})
        ],
        "deprecated-mail-update-project-mail-setting": [
            ({**by_short_id, "mailSetting": "whitelist"}, {"whitelist": senders})
        ],
        "deprecated-mail-projectsetting-update-blacklist": [(project, {"blacklist": senders})],
        "deprecated-mail-projectsetting-update-whitelist": [(project, {"whitelist": senders})],
    }
    return happy.get(operation_id.removeprefix("legacy-"), [])


@pytest.fixture(scope="session")
def loopback_session() -> Iterator[requests.Session]:
    """The one HTTP session of this module: no proxies, .netrc or other settings from the environment, so
    every request goes straight to the live server on 127.0.0.1."""
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture
def api_schema(
    live_server: LiveServer, seeded: SeededObjects, loopback_session: requests.Session
) -> schemathesis.BaseSchema:
    response = loopback_session.get(f"{live_server.base_url}/v2/openapi.json", timeout=10)
    response.raise_for_status()
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": live_server.base_url,
            "headers": {"x-access-token": live_server.admin_token},
            "request-timeout": 30,
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "generation": {
                "mode": "all",  # valid and invalid requests
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",  # nothing replayed from earlier runs
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    )
    schema = schemathesis.openapi.from_dict(response.json(), config=config)
    _steer(seeded, schema, live_server.admin_token)
    return schema


@pytest.fixture(autouse=True)
def _pytest_node_id_shim(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's `from_fixture` tests read and relabel `node._nodeid`, which pytest 9.2 no longer
    has (it became `node._id`); give the node the plain attribute. A no-op where the attribute exists."""
    node = request.node
    if not hasattr(node, "_nodeid"):
        node._nodeid = node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


def _mark_passwords(node: Any) -> None:
    """Start every generated password of 8+ characters with `§`, in place.

    The session checks that no password the suite sent appears in any log line. Generated values are
    drawn from shared pools (`-Infinity`, `00000000`, ...) that also end up in URLs, which the access logs
    record, so an unmarked password could "appear" in a log line by coincidence. `§` is percent-encoded in
    every URL, so a marked password can show up in a log line only if it really leaked. Lengths (in
    characters) stay the same, so the password rules are exercised as generated.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "password" and isinstance(value, str) and len(value) >= 8:
                node[key] = "§" + value[1:]
            else:
                _mark_passwords(value)
    elif isinstance(node, list):
        for item in node:
            _mark_passwords(item)


@schema.parametrize()
def test_own_document(case: schemathesis.Case, loopback_session: requests.Session) -> None:
    _mark_passwords(case.body)
    # Redirects are answers to check, not to follow (none is documented, so one would fail the run).
    case.call_and_validate(session=loopback_session, allow_redirects=False, checks=CHECKS)
