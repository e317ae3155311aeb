"""The cluster proxy (`ansible-proxy cluster`): deploys packages with ansible-playbook.

See docs/cluster.md, and docs/architecture.md for the path of one cluster run.
"""
