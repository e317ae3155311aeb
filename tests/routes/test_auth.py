"""The tokens the routes enforce: the agent token on agent endpoints, the admin token (on
both), the metrics token on /metrics, and no token in the access log. Refusals at the
start (weak tokens, token files, --insecure-no-auth) and TLS: tests/integration/server/
test_auth.py."""

from __future__ import annotations

from tests.support.answers import envelope, node_info
from tests.support.inprocess import BinManagerAppFactory

AGENT_TOKEN = "agent-token-0123456789abcdef"


def test_agent_token_guards_agent_endpoints_and_no_token_is_logged(
    bin_manager_app_factory: BinManagerAppFactory,
) -> None:
    manager = bin_manager_app_factory(agent_token=AGENT_TOKEN, node_auth="migrate")
    sha = manager.publish("guarded", b"guarded content")
    agent = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    wrong = {"Authorization": "Bearer not-the-agent-token-at-all"}
    paths = [
        "/keepalive?nodeName=n1",
        "/bins/guarded",
        "/download/guarded",
        f"/download/guarded?sha256={sha}",
        "/releases/latest/guarded/download",
        "/releases/latest/guarded/sha256",
    ]
    with manager.client(base_url=manager.api) as http:
        for path in paths:
            assert "token" in envelope(http.get(path), 401)["message"]
            envelope(http.get(path, headers=wrong), 401)
        envelope(http.post("/keepalive", json=node_info("n1")), 401)
        envelope(http.post("/keepalive", json=node_info("n1"), headers=agent), 200)
        for path in paths:
            assert http.get(path, headers=agent).status_code == 200, path
        # The admin token works on agent endpoints; the agent token never on admin ones.
        assert http.get("/bins/guarded", headers=manager.admin_headers).status_code == 200
        envelope(http.get("/admin/bins", headers=agent), 401)
        envelope(http.get(f"/admin/bins?token={manager.admin_token}"), 401)
        for open_path in ("/healthz", "/openapi.json", "/docs"):
            assert http.get(f"{manager.url}{open_path}").status_code == 200, open_path
        envelope(http.get(f"{manager.url}/metrics"), 401)
        envelope(http.get(f"{manager.url}/metrics", headers=agent), 401)
        metrics = http.get(f"{manager.url}/metrics", headers=manager.admin_headers)
        assert metrics.status_code == 200
    log = manager.log()
    assert '"route": "/api/v1/bins/{bin_name}"' in log  # the access log is there...
    for secret in (AGENT_TOKEN, manager.admin_token, "not-the-agent-token-at-all"):
        assert secret not in log  # ...and shows no token, header or query string


def test_metrics_answer_the_metrics_token_or_the_admin_token_only(
    bin_manager_app_factory: BinManagerAppFactory,
) -> None:
    metrics_token = "metrics-Zr8-scrape-token-3xQp"
    manager = bin_manager_app_factory(metrics_token=metrics_token)
    with manager.client() as http:
        url = f"{manager.url}/metrics"
        assert "bearer token" in envelope(http.get(url), 401)["message"]
        envelope(http.get(url, headers={"Authorization": "Bearer metrics-wrong-token"}), 401)
        scraped = http.get(url, headers={"Authorization": f"Bearer {metrics_token}"})
        assert scraped.status_code == 200
        assert "bin_manager_requests_total" in scraped.text
        assert http.get(url, headers=manager.admin_headers).status_code == 200
