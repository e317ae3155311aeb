"""GET /docs: the API reference as one HTML page rendered here from the OpenAPI schema.

FastAPI's /docs and /redoc load Swagger UI and ReDoc from a CDN, so a page on the
bin-manager's origin would run third-party script; this page has no script at all and
fetches nothing but the dashboard's own stylesheet. /openapi.json stays for tools.
"""

from __future__ import annotations

from typing import Any

import jinja2
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse

_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_METHODS = ("get", "head", "post", "put", "patch", "delete")
_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }} {{ version }}: API</title>
<link rel="stylesheet" href="/dashboard/static/dashboard.css">
<link rel="icon" href="/dashboard/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<main>
<h1>{{ title }} {{ version }}</h1>
<p>{{ description }} The machine-readable schema: <a href="/openapi.json">/openapi.json</a>.</p>
{% for tag, operations in groups %}
<h2>{{ tag }}</h2>
<table>
<thead><tr><th>method</th><th>path</th><th>what</th><th>parameters</th><th>answers</th></tr></thead>
<tbody>
{% for op in operations %}
<tr id="{{ op.id }}">
<td><code>{{ op.method }}</code></td><td><code>{{ op.path }}</code></td>
<td>{{ op.summary }}{% if op.description %}<br><small>{{ op.description }}</small>{% endif %}</td>
<td>{% for p in op.parameters %}<code>{{ p }}</code>{{ ", " if not loop.last }}{% endfor %}</td>
<td>{{ op.responses | join(", ") }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% endfor %}
</main>
</body>
</html>
"""


def add_api_docs(app: FastAPI) -> None:
    """Serve /docs (and send /redoc there); build the app with docs_url=redoc_url=None."""
    template = jinja2.Environment(autoescape=True).from_string(_PAGE)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        schema = app.openapi()
        info = schema.get("info", {})
        body = template.render(
            title=info.get("title", ""),
            version=info.get("version", ""),
            description=info.get("description", ""),
            groups=_groups(schema),
        )
        headers = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"}
        return HTMLResponse(body, headers=headers)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> RedirectResponse:
        return RedirectResponse("/docs", status_code=308)


def _groups(schema: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Operations by their first tag, in the schema's order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [
                f"{p['name']} ({p['in']}{', required' if p.get('required') else ''})"
                for p in op.get("parameters", [])
            ]
            if "requestBody" in op:
                params.append("JSON body" if _json_body(op["requestBody"]) else "body")
            groups.setdefault((op.get("tags") or ["other"])[0], []).append(
                {
                    "id": op.get("operationId", f"{method}-{path}"),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": params,
                    "responses": sorted(op.get("responses", {})),
                }
            )
    return list(groups.items())


def _json_body(body: dict[str, Any]) -> bool:
    return "application/json" in body.get("content", {})
