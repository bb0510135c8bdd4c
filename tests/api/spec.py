"""Validate real responses against the official mittwald spec (read from ../shared/reference/)."""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import FormatChecker

METHODS = ("get", "post", "put", "patch", "delete")
# Operations of Postwerk's own (no mittwald counterpart): checked against Postwerk's document instead.
EXTENSION_MARK = "x-postwerk-extension"
ERROR_REF = "#/components/schemas/de.mittwald.v1.commons.Error"
VALIDATION_REF = "#/components/schemas/de.mittwald.v1.commons.ValidationErrors"

format_checker = FormatChecker()


@format_checker.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@format_checker.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
        if len(value) != 36:
            raise ValueError("not in 8-4-4-4-12 form")
    return True


@format_checker.checks("idn-email")
def _idn_email(value: object) -> bool:
    return not isinstance(value, str) or (value.count("@") >= 1 and not value.startswith("@"))


def _openapi_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable` → JSON Schema type lists, recursively."""
    if isinstance(node, dict):
        converted = {key: _openapi_to_json_schema(value) for key, value in node.items()}
        if converted.pop("nullable", False) and "type" in converted:
            converted["type"] = [converted["type"], "null"]
        return converted
    if isinstance(node, list):
        return [_openapi_to_json_schema(item) for item in node]
    return node


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
    return re.compile(f"^{pattern}$")


@dataclass
class Operation:
    operation_id: str
    method: str
    template: str
    responses: dict[str, Any]


@dataclass
class SpecValidator:
    spec: dict[str, Any]
    own_document: dict[str, Any]
    seen: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def load(cls, spec_path: Path, own_document: dict[str, Any]) -> SpecValidator:
        return cls(spec=json.loads(spec_path.read_text()), own_document=own_document)

    def __post_init__(self) -> None:
        self.components = _openapi_to_json_schema(copy.deepcopy(self.spec["components"]))
        self.by_id: dict[str, Operation] = {}
        for template, item in self.spec["paths"].items():
            for method in METHODS:
                operation = item.get(method)
                if operation and "operationId" in operation:
                    self.by_id[operation["operationId"]] = Operation(
                        operation["operationId"], method, template, operation["responses"]
                    )
        # Our routes, most literal first, so `/v2/mail-addresses/` wins over `/v2/mail-addresses/{id}`.
        self.own_routes: list[tuple[re.Pattern[str], str, str]] = []
        self.extensions: dict[str, dict[str, Any]] = {}  # operationId -> its operation in our document
        for template, item in self.own_document["paths"].items():
            for method in METHODS:
                if method in item:
                    self.own_routes.append((_template_regex(template), method, item[method]["operationId"]))
                    if item[method].get(EXTENSION_MARK):
                        self.extensions[item[method]["operationId"]] = item[method]
        self.own_routes.sort(key=lambda route: route[0].pattern.count("[^/]+"))

    def official_operation_ids(self) -> set[str]:
        return set(self.by_id)

    def own_operation_id(self, method: str, path: str) -> str | None:
        for regex, route_method, operation_id in self.own_routes:
            if route_method == method.lower() and regex.match(path):
                return operation_id
        return None

    def spec_operation(self, own_operation_id: str) -> Operation:
        return self.by_id[own_operation_id.removeprefix("legacy-")]

    def schema_for(self, operation: Operation, status: int) -> dict[str, Any] | None:
        response = operation.responses.get(str(status)) or operation.responses.get("default")
        if response is None or (status >= 400 and "content" not in _resolve(self.spec, response)):
            # The spec gives this error no schema (401, the deprecated PUTs' errors): mittwald's error shapes.
            if status < 400:
                return None
            return {"$ref": VALIDATION_REF if status == 400 else ERROR_REF}
        response = _resolve(self.spec, response)
        content = response.get("content", {}).get("application/json")
        return None if content is None else _openapi_to_json_schema(content["schema"])

    def validate(self, method: str, path: str, status: int, body: bytes, headers: Any) -> str:
        """Assert that the response matches the official operation; return our operationId."""
        own_id = self.own_operation_id(method, path)
        if own_id is None:
            assert status == 404, f"{method} {path}: no such route, yet {status}"
            _check(self.components, {"$ref": ERROR_REF}, json.loads(body), f"{method} {path}")
            return "<none>"
        if own_id in self.extensions:
            self._validate_extension(own_id, status, body)
            return own_id
        operation = self.spec_operation(own_id)
        self.seen.add((own_id, status))
        documented = set(operation.responses) | {"400", "401", "409"}  # the 400 of the deprecated PUTs
        if str(status) not in documented and "default" not in operation.responses:
            raise AssertionError(
                f"{own_id}: status {status} is not one the spec gives ({sorted(documented)})"
            )
        schema = self.schema_for(operation, status)
        if schema is None:
            assert body in (b"", b"null"), f"{own_id} {status}: expected no body, got {body[:200]!r}"
        else:
            _check(self.components, schema, json.loads(body), f"{own_id} {status}")
        if status == 200 and "X-Pagination-TotalCount" in str(operation.responses.get("200", {})):
            for header in (
                "X-Pagination-TotalCount",
                "X-Pagination-Limit",
                "X-Pagination-Skip",
                "X-Pagination-Page",
            ):
                assert header.lower() in {name.lower() for name in headers}, f"{own_id}: no {header}"
        return own_id

    def _validate_extension(self, own_id: str, status: int, body: bytes) -> None:
        """Postwerk's own operations: errors in mittwald's shapes (like every other route), successes as
        Postwerk's document describes them."""
        responses = self.extensions[own_id]["responses"]
        assert str(status) in responses, f"{own_id}: status {status} is not documented ({sorted(responses)})"
        if status >= 400:
            reference = VALIDATION_REF if status == 400 else ERROR_REF
            _check(self.components, {"$ref": reference}, json.loads(body), own_id)
            return
        content = responses[str(status)].get("content", {}).get("application/json")
        assert content is not None, f"{own_id} {status}: no documented body"
        document = {**content["schema"], "components": self.own_document["components"]}
        validator = jsonschema.Draft202012Validator(document, format_checker=format_checker)
        errors = list(validator.iter_errors(json.loads(body)))
        assert not errors, f"{own_id} {status}: breaks Postwerk's own schema: {errors[0].message}"


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _check(components: dict[str, Any], schema: dict[str, Any], instance: Any, where: str) -> None:
    document = {**schema, "components": components}
    validator = jsonschema.Draft7Validator(document, format_checker=format_checker)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        details = "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        raise AssertionError(f"{where}: response breaks the official schema: {details}")
