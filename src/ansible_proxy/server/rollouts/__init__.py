"""Staged rollouts (docs/bin-manager.md "Rollouts"): a new release walks the fleet wave by
wave, each wave baked before the next starts, and a wave whose failures reach the policy's
limit halts the rollout and reverts the fleet to the previous good release.

  policy.py   pure: the policy's options, the waves of a fleet, failure thresholds
  members.py  what each member node showed of the release (the write path records it)
  lifecycle.py  start, promote, halt, revert, resume, complete: each change of state
  engine.py   the background check that promotes baked waves and halts failing ones
  status.py   `rollout status`: waves, nodes, failures, bake remaining
"""
