"""`pipe metrics diff --json` is JSON: a difference that overflows a float (1e308 - -1e308) or a relative
change that does (an old value of 5e-324) is left out, as for non-numbers; it was written `Infinity`."""

from __future__ import annotations

import json

from tests.conftest import Workspace


def test_an_overflowing_change_is_left_out_and_the_output_stays_json(workspace: Workspace) -> None:
    workspace.write({"pipeline.yaml": "metrics: [m.json]\n", "m.json": '{"e": 1e308, "t": 5e-324, "ok": 1}'})
    workspace.commit("metrics")
    workspace.write({"m.json": '{"e": -1e308, "t": 1.0, "ok": 3}'})

    shown = json.loads(workspace.pipe("metrics", "diff", "--json").stdout, parse_constant=_refuse)

    assert shown["m.json"]["e"] == {"old": 1e308, "new": -1e308}
    assert shown["m.json"]["ok"] == {"old": 1, "new": 3, "diff": 2}
    table = workspace.pipe("metrics", "diff", "--md").stdout
    assert "inf" not in table.lower()


def _refuse(name: str) -> None:
    raise AssertionError(f"not JSON: {name}")


def test_a_diff_whose_files_failed_to_read_does_not_claim_no_changes(workspace: Workspace) -> None:
    workspace.write({"pipeline.yaml": "metrics: [m.json]\n", "m.json": "{broken"})
    workspace.commit("broken")

    result = workspace.pipe("metrics", "diff", exit_code=0)

    assert "no changes" not in result.output and "m.json" in result.stderr
