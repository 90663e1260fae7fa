"""`pipe exp` and `pipe queue`, one module per verb.

`run` (queue one experiment per `-S` combination; run one in its worktree and record it),
`run_all` (run queued experiments, N at once, watching for signals and kills), `worker` (`queue
start | kill | logs -f`), `show` (`exp show | list`, name lookup), `diff`, `apply` (`apply`,
`branch`), `save`, `remove` (`remove`, `clean`), `share` (`push`, `pull`); `records` (queued,
running and failed experiments under `.pipe/tmp/exps/`) and `worktree` (an experiment's private
workspace) are what they share. Refs and worktrees are git plumbing in `scm/exps.py`; `-S`
overrides are parsed and applied by `pipeline/overrides.py`.
"""
