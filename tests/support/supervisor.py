"""Fixtures for a real supervisord and the agent run as a subprocess."""
