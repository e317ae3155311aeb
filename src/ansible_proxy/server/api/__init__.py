"""The JSON API's routes, thin: validate, call db/, hotpath/, services/, wrap in the envelope.

agent.py   the wire contract agents poll (docs/api.md); its answers' models in protocol.py
admin.py   /api/v1/admin: publish, pin, pause, resume, delete, listings
answers.py, rollout_answers.py   the admin answers' models: every route declares one
"""
