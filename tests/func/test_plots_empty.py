"""A plot file that parses but holds no rows (a header-only CSV, an empty file, `[]`) is reported by name,
as a warning beside other plots and as the error when no plot has data; it was an internal error."""

from __future__ import annotations

import pytest

from tests.conftest import Cli, Workspace


@pytest.mark.parametrize(("name", "text"), [("e.csv", "x,y\n"), ("e.csv", ""), ("e.json", "[]"),
                                            ("e.json", '{"a": 1}'), ("e.yaml", "rows: []\n")])
def test_a_plot_without_rows_alone_is_an_error_naming_it(workspace: Workspace, cli: Cli, name: str, text: str) -> None:
    workspace.write({name: text})

    result = cli.run("plots", "show", name, "-o", "out", exit_code=1)

    assert f"no plot has data: {name} at 'workspace': no data rows" in result.stderr
    assert not (workspace.root / "out").exists()


def test_a_plot_without_rows_beside_others_is_a_warning(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"e.csv": "x,y\n", "ok.csv": "x,y\n1,2\n", "pipeline.yaml": "plots: [e.csv, ok.csv]\n"})
    workspace.commit("plots")

    result = cli.run("plots", "diff", "-o", "out")

    assert "warning: plot 'e.csv' at 'HEAD': no data rows" in result.stderr
    assert (workspace.root / "out/index.html").is_file()
