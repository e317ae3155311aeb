"""`ansible-proxy check` (docs/inspector.md): measure each service, judge, roll back a step.

kinds.py     the one list of check kinds: name, table column, probe, manifest key
probes.py    each kind's measurement: supervisor state, port, HTTP, image, Prometheus alerts
verdicts.py  pure: outcomes, the verdict on one service, the exit code
check.py     one check run: the lock, each service measured, judged and acted on
rollback.py  one step back under the binary's lock; what pins and withdrawals allow
state.py     the state file: failure streaks, rollbacks, what a person was told
report.py    rollback reports to the bin-manager, queued until the API takes them
output.py    the command: table, JSON, textfile for node_exporter, stderr news
"""
