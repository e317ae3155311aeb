"""Staged rollouts (docs/bin-manager.md "Rollouts"): a new release walks the fleet wave by
wave, each wave baked before the next starts, and a wave whose failures reach the policy's
limit halts the rollout and reverts the fleet to the previous good release.

  policy.py   pure: the policy's options, the waves of a fleet, failure thresholds
  members.py  what each member node showed of the release (the write path records it)
  lifecycle.py  start, promote, watch, halt, revert, complete: each change of state
  engine.py   the background check that promotes baked waves and halts failing ones
  judge.py    pure: a wave's counts against its thresholds: halt, wait (why) or baked
  counts.py   a wave's counts (failed, offline, not installed, refused…) in one query
  offline.py  members not heard for the silent window marked offline, back once heard
  watch.py    after the last wave: `watching` for --watch, judged, then completed
  options.py  pure: each policy option parsed and checked (counts, labels, durations)
  resuming.py `rollout resume`: a halted rollout goes on, a reverted release re-enabled
  emergency.py  `rollout revert`: every node back to the last completed release at once
  planning.py   the waves a publish starts (and `rollout plan` shows), when at the earliest
  windows.py    pure: maintenance windows (`--window`), open or when they next open
  calendar.py   when a wave may start: its windows and the fleet-wide freeze
  status.py   `rollout status`: waves, nodes, failures, bake remaining
  eligible.py   who takes part: revoked, stale and held nodes left out, or skipped
  reverts.py    a revert's way back for signed hosts; the nodes still on a reverted release
  quarantine.py members that hold the release as bad, and the command that clears it
  stuck.py      a wave that waits too long: `rollout-stuck`, once per wave
  superseding.py  what a publish during a rollout ends and withdraws
  ways_out.py   what `rollout status` shows of all that
"""
