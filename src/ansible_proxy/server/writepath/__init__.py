"""The agents' writes, batched so that a fleet's reports cost few commits.

writes.py      group commit of reports and progress
heartbeats.py  keepalives buffered in memory, flushed every few seconds
retention.py   pruning of old reports, progress and forgotten nodes
"""
