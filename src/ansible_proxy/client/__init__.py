"""What every host-side part shares: the agent, the inspector and the cluster proxy.

The bin-manager API client (`api`), the verified download (`download`), lock files
(`locks`, with `processes` for their holders), crash-safe files (`files`), the whole-call
deadline (`deadline`), the decision log (`logs`) and the host configuration with its
config-file parser (`config`). `agent/` and `cluster/` import from here, never from each
other.
"""
