"""Event notifications: one JSON POST per event and receiver, from a queue in the database.

targets.py  BIN_MANAGER_WEBHOOK_URLS parsed into receivers (a secret each, optional)
queue.py    events added to the queue in the caller's transaction; delivered rows pruned
sender.py   the background thread that claims due rows, POSTs them and retries with backoff
"""
