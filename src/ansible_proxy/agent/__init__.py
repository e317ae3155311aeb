"""The host agent (`ansible-proxy run`) and the inspector (`ansible-proxy check`).

See docs/architecture.md for the path of one tick and one check through these modules.
"""
