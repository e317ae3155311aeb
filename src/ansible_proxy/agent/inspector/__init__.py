"""`ansible-proxy check` (docs/inspector.md): measure each service, judge, roll back a step.

probes.py    measures one service: supervisor state, port, Prometheus alerts
verdicts.py  pure: outcomes, the verdict on one service, the exit code
check.py     one check run: state file, lock, the rollback, queued reports
output.py    the command: table, JSON, textfile for node_exporter, stderr news
"""
