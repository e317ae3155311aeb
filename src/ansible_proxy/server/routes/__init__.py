"""HTTP routes of the bin-manager; thin: validate, call db/storage, wrap in the envelope."""
