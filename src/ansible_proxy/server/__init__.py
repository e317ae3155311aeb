"""The bin-manager: the central release server the agents talk to (docs/api.md)."""
