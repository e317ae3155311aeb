"""Benchmarks of the bin-manager (issue 2) and the agent (issue 3).

Each one measures its baseline (nginx, curl + jq, curl | sha256sum) in the same run and
prints `name: value` lines; `python -m bench [server|agent]` runs them. Not tests.
"""
