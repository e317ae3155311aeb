"""The one table of who may call what: every admin API route and every dashboard page and
form, by method and path, with the right it needs and the name its audit entry gets.

`auth/authorize.py` (the admin API) and `dashboard/render.py` (the dashboard) look the
matched route up here on every request; a route missing from the table is refused (403),
never let through. tests/integration/team/test_route_rights.py fails when a route of the
app is in neither RULES nor OPEN, and calls every route with every role.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_proxy.server.auth.rights import Right

ADMIN = "/api/v1/admin"
BIN = f"{ADMIN}/bins/{{bin_name:path}}"
PAGES = "/dashboard"


@dataclass(frozen=True)
class Rule:
    """The right a route needs; `action` names a change in the audit trail (None: a read,
    not audited). `{action}` in it is the route's own path parameter (rollout actions)."""

    right: Right
    action: str | None = None

    def action_of(self, path_params: dict[str, str]) -> str | None:
        if self.action is None:
            return None
        return self.action.format(action=path_params.get("action", ""))[:32]


READ = Rule(Right.READ)

RULES: dict[tuple[str, str], Rule] = {
    # releases (api/admin.py, api/signatures.py)
    ("GET", f"{ADMIN}/bins"): READ,
    ("GET", f"{BIN}/releases"): READ,
    ("GET", f"{BIN}/nodes"): READ,
    ("GET", f"{BIN}/progress"): READ,
    ("GET", f"{BIN}/sequence"): READ,
    ("GET", f"{BIN}/signing"): READ,
    ("GET", f"{ADMIN}/nodes"): READ,
    ("GET", f"{ADMIN}/nodes/{{node_name:path}}"): READ,
    ("GET", f"{ADMIN}/events"): READ,
    ("POST", f"{BIN}/releases"): Rule(Right.PUBLISH, "publish"),
    ("POST", f"{BIN}/signatures"): Rule(Right.PUBLISH, "sign"),
    ("POST", f"{BIN}/pin"): Rule(Right.PIN, "pin"),
    ("POST", f"{BIN}/pause"): Rule(Right.PAUSE, "pause"),
    ("POST", f"{BIN}/resume"): Rule(Right.PAUSE, "resume"),
    ("DELETE", f"{BIN}/releases/{{sha256}}"): Rule(Right.DELETE, "delete-release"),
    # rollouts (api/rollouts.py)
    ("GET", f"{BIN}/rollout"): READ,
    ("GET", f"{BIN}/rollout/plan"): READ,
    ("GET", f"{ADMIN}/freeze"): READ,
    ("PUT", f"{ADMIN}/freeze"): Rule(Right.ROLLOUT, "freeze"),
    ("DELETE", f"{ADMIN}/freeze"): Rule(Right.ROLLOUT, "unfreeze"),
    ("PUT", f"{BIN}/rollout/policy"): Rule(Right.ROLLOUT, "rollout-policy"),
    ("POST", f"{BIN}/rollout/{{action}}"): Rule(Right.ROLLOUT, "rollout-{action}"),
    # nodes and proxies (api/credentials.py)
    ("GET", f"{ADMIN}/credentials/pending"): READ,
    ("GET", f"{ADMIN}/credentials/{{node_name}}"): READ,
    ("POST", f"{ADMIN}/credentials/pending/reject"): Rule(Right.NODES, "reject-node"),
    ("POST", f"{ADMIN}/credentials/{{node_name}}/approve"): Rule(Right.NODES, "approve-node"),
    ("POST", f"{ADMIN}/credentials/{{node_name}}/revoke"): Rule(Right.NODES, "revoke-node"),
    ("POST", f"{ADMIN}/nodes/{{node_name}}/labels"): Rule(Right.NODES, "label-node"),
    ("DELETE", f"{ADMIN}/nodes/{{node_name:path}}"): Rule(Right.NODES, "delete-node"),
    ("GET", f"{ADMIN}/proxies"): READ,
    ("POST", f"{ADMIN}/proxies"): Rule(Right.PROXIES, "create-proxy"),
    ("POST", f"{ADMIN}/proxies/{{name}}/revoke"): Rule(Right.PROXIES, "revoke-proxy"),
    # people, tokens and the audit trail (api/team.py, api/audit.py)
    ("GET", f"{ADMIN}/whoami"): READ,
    ("GET", f"{ADMIN}/audit"): READ,
    ("GET", f"{ADMIN}/users"): Rule(Right.PEOPLE),
    ("POST", f"{ADMIN}/users"): Rule(Right.PEOPLE, "add-user"),
    ("POST", f"{ADMIN}/users/{{name}}/role"): Rule(Right.PEOPLE, "set-role"),
    ("POST", f"{ADMIN}/users/{{name}}/disable"): Rule(Right.PEOPLE, "disable-user"),
    ("POST", f"{ADMIN}/users/{{name}}/enable"): Rule(Right.PEOPLE, "enable-user"),
    ("POST", f"{ADMIN}/users/{{name}}/password"): Rule(Right.PEOPLE, "reset-password"),
    ("GET", f"{ADMIN}/tokens"): Rule(Right.TOKENS),
    ("POST", f"{ADMIN}/tokens"): Rule(Right.TOKENS, "create-token"),
    ("POST", f"{ADMIN}/tokens/{{name}}/revoke"): Rule(Right.TOKENS, "revoke-token"),
    # the dashboard's pages (a login, or BIN_MANAGER_DASHBOARD_PUBLIC) and forms
    ("GET", f"{PAGES}/"): READ,
    ("GET", f"{PAGES}/bins/{{bin_name}}"): READ,
    ("GET", f"{PAGES}/bins/{{bin_name}}/releases/{{arch}}/{{sha256}}"): READ,
    ("GET", f"{PAGES}/nodes/{{node_name:path}}"): READ,
    ("GET", f"{PAGES}/activity"): READ,
    ("GET", f"{PAGES}/enrolments"): READ,
    ("GET", f"{PAGES}/audit"): READ,
    ("POST", f"{PAGES}/bins/{{bin_name}}/pin"): Rule(Right.PIN, "pin"),
    ("POST", f"{PAGES}/bins/{{bin_name}}/pause"): Rule(Right.PAUSE, "pause"),
    ("POST", f"{PAGES}/bins/{{bin_name}}/resume"): Rule(Right.PAUSE, "resume"),
    ("POST", f"{PAGES}/bins/{{bin_name}}/rollout/{{action}}"): Rule(
        Right.ROLLOUT, "rollout-{action}"
    ),
    ("POST", f"{PAGES}/bins/{{bin_name}}/rollout-policy"): Rule(Right.ROLLOUT, "rollout-policy"),
    ("POST", f"{PAGES}/enrolments/{{node_name}}/approve"): Rule(Right.NODES, "approve-node"),
    ("POST", f"{PAGES}/enrolments/{{node_name}}/reject"): Rule(Right.NODES, "reject-node"),
    ("POST", f"{PAGES}/enrolments-reject-all"): Rule(Right.NODES, "reject-node"),
    ("POST", f"{PAGES}/nodes/{{node_name}}/revoke"): Rule(Right.NODES, "revoke-node"),
    ("POST", f"{PAGES}/nodes/{{node_name}}/delete"): Rule(Right.NODES, "delete-node"),
    ("POST", f"{PAGES}/proxies/{{name}}/revoke"): Rule(Right.PROXIES, "revoke-proxy"),
}

# Routes with a check of their own, or none by design: the agents' API (node credentials,
# the agent token), enrolment, /metrics (its token), health, the API docs, and the
# dashboard's way in (login, logout, a person's own password, the static files).
OPEN: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/"),
        ("GET", "/openapi.json"),
        ("HEAD", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("POST", "/api/v1/enrol"),
        ("GET", "/api/v1/keepalive"),
        ("POST", "/api/v1/keepalive"),
        ("GET", "/api/v1/bins"),
        ("GET", "/api/v1/bins/{bin_name:path}"),
        ("POST", "/api/v1/bins/{bin_name:path}"),
        ("POST", "/api/v1/bins/{bin_name:path}/progress"),
        ("GET", "/api/v1/bins/{bin_name:path}/signature"),
        ("GET", "/api/v1/download/{bin_name:path}"),
        ("HEAD", "/api/v1/download/{bin_name:path}"),
        ("GET", "/api/v1/cache/authorize"),
        ("GET", "/api/v1/releases/latest/{bin_name:path}/download"),
        ("HEAD", "/api/v1/releases/latest/{bin_name:path}/download"),
        ("GET", "/api/v1/releases/latest/{bin_name:path}/sha256"),
        ("GET", f"{PAGES}/static/{{name}}"),
        ("GET", f"{PAGES}/login"),
        ("POST", f"{PAGES}/login"),
        ("POST", f"{PAGES}/logout"),
        ("GET", f"{PAGES}/password"),
        ("POST", f"{PAGES}/password"),
    }
)


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of a route (its declared path, e.g. `/api/v1/admin/bins/{bin_name:path}`);
    None when the table has none: the caller refuses."""
    return RULES.get(("GET" if method == "HEAD" else method, path))
