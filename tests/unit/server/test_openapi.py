"""/openapi.json describes every answer: each JSON success and each documented error has a
schema with named fields (never FastAPI's free-form object), errors are the `{code,
message}` envelope, and the schema is valid for schemathesis' conformance check."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from ansible_proxy.server.app import create_app
from ansible_proxy.server.settings import Settings

METHODS = ("get", "head", "post", "put", "patch", "delete")
# Answers with no body at all.
BODILESS = {"204", "304"}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(data_dir=data_dir, admin_token="a" * 40))

    async def fetch() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/openapi.json")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    return asyncio.run(fetch())


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = schema["components"]["schemas"][name]
    return node


def _answers(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(operation, status, response) of every documented answer."""
    found = []
    for path, item in schema["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is not None:
                for status, response in operation["responses"].items():
                    found.append((f"{method.upper()} {path}", status, response))
    return found


def _described(schema: dict[str, Any], node: dict[str, Any]) -> bool:
    """A schema that names what is in it: an object with properties, or a typed array."""
    node = _resolve(schema, node)
    if "anyOf" in node:
        return all(_described(schema, part) for part in node["anyOf"])
    if node.get("type") == "object":
        return bool(node.get("properties"))
    if node.get("type") == "array":
        return _described(schema, node.get("items", {}))
    return "type" in node or "const" in node or "enum" in node


def test_every_json_success_has_a_schema_with_named_fields(schema: dict[str, Any]) -> None:
    missing = []
    successes = 0
    for operation, status, response in _answers(schema):
        if not status.startswith("2"):
            continue
        successes += 1
        content = response.get("content", {})
        if status not in BODILESS and not content:
            missing.append(f"{operation} {status}: no content type")
        for media_type, body in content.items():
            if "json" in media_type and not _described(schema, body.get("schema", {})):
                missing.append(f"{operation} {status} {media_type}: {body.get('schema')}")
    assert successes >= 45
    assert missing == []


def test_every_json_success_is_the_envelope(schema: dict[str, Any]) -> None:
    """`{code: 0, message: "success"[, data][, total, next]}`, as the original design."""
    for operation, status, response in _answers(schema):
        body = response.get("content", {}).get("application/json")
        if not status.startswith("2") or body is None:
            continue
        answer = _resolve(schema, body["schema"])
        assert answer["properties"]["code"]["const"] == 0, operation
        assert answer["properties"]["message"]["const"] == "success", operation
        assert {"code", "message"} <= set(answer["required"]), operation


def test_every_documented_error_is_code_and_message(schema: dict[str, Any]) -> None:
    undescribed = []
    for operation, status, response in _answers(schema):
        if int(status) < 400:
            continue
        body = response.get("content", {}).get("application/json")
        if (
            body is None
            or _resolve(schema, body["schema"]) != schema["components"]["schemas"]["ErrorBody"]
        ):
            undescribed.append(f"{operation} {status}")
    assert undescribed == []
    error = schema["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"code", "message"}


def test_answers_leave_room_for_fields_added_later(schema: dict[str, Any]) -> None:
    """docs/api.md: fields are only ever added, so no answer's schema forbids more."""
    closed = [
        name
        for name, node in schema["components"]["schemas"].items()
        if node.get("additionalProperties") is False
    ]
    requests = {"ActionRequest", "LabelChange", "PinRequest", "PolicyRequest", "Rejection",
                "SignRequest", "NewUser", "RoleChange", "NewToken", "FreezeRequest"}  # fmt: skip
    assert set(closed) <= requests


def test_the_agents_answers_name_the_original_fields(schema: dict[str, Any]) -> None:
    paths = schema["paths"]

    def data_of(path: str) -> dict[str, Any]:
        body = paths[path]["get"]["responses"]["200"]["content"]["application/json"]
        return _resolve(schema, _resolve(schema, body["schema"])["properties"]["data"])

    latest = data_of("/api/v1/bins/{bin_name}")
    assert latest["required"] == ["sha256"]
    assert set(latest["properties"]) == {"sha256", "version", "withdrawn"}
    keepalive = data_of("/api/v1/keepalive")
    assert set(keepalive["required"]) == {"nodeName", "status"}
    batch = data_of("/api/v1/bins")
    assert set(batch["required"]) == {"arch", "bins"}
