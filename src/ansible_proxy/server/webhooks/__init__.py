"""Event notifications: one JSON POST per event and receiver, from a queue in the database.

targets.py  BIN_MANAGER_WEBHOOK_URLS parsed into receivers (a secret each, optional)
queue.py    events queued in the caller's transaction (chat markup escaped); pruned once sent
folding.py  pure: which node events wait (repeats, over a limit) and merge into a summary
backlog.py  one receiver's queue and recent deliveries for folding.py; guarded merges
sender.py   the background thread that claims due rows, POSTs them and retries with backoff
"""
