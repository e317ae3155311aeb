"""The JSON API's routes, thin: validate, call db/, hotpath/, services/, wrap in the envelope.

agent.py   the wire contract agents poll (docs/api.md)
admin.py   /api/v1/admin: publish, pin, pause, resume, delete, listings
"""
