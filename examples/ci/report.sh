#!/bin/sh
# The pull-request report: how the metrics and params of the workspace differ from BASE.
#
#   sh examples/ci/report.sh BASE > report.md
#
# BASE is the revision to compare with (the pull request's target branch in CI; default HEAD).
# Run it after `pipe repro`, so the workspace holds this branch's results. The metrics of BASE
# that are cached (a stage's `metrics:` out) are read from the cache: run `pipe fetch --rev BASE`
# first when this machine has not got them.
set -eu
base="${1:-HEAD}"

printf '## Metrics: `%s` -> this branch\n\n' "$base"
pipe metrics diff "$base" --md
printf '\n## Params: `%s` -> this branch\n\n' "$base"
pipe params diff "$base" --md
