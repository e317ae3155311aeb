"""Fixtures for the bin-manager: a real uvicorn process on loopback (SQLite or PostgreSQL)."""
