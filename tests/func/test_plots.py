"""pipe plots show / diff / templates: the charts hold exactly the data of the files, at every revision.

Points are read back from `--json` (DVC's shape: `data[plot][0].content` is the Vega-Lite spec
with its `data.values`) and from the files written next to index.html.
"""

from __future__ import annotations

import json
import sys
import xml.dom.minidom
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_engine.ops.plots.render import TEMPLATE_NAMES
from tests.conftest import Cli, Workspace

LOSS_CSV = "epoch,loss,acc\n0,1.0,0.5\n1,0.6,0.7\n2,0.4,0.8\n"
LOSS_ROWS = [(0, 1.0), (1, 0.6), (2, 0.4)]
# A stage that writes one cached plot file from params.yaml's `lr` (as a training run logs its curve).
TRAIN_PY = (
    "import json\n"
    "lr = float(open('params.yaml').read().split(':')[1])\n"
    "rows = [{'step': i, 'acc': round(1 - lr / (i + 1), 4)} for i in range(4)]\n"
    "json.dump({'train': rows}, open('train.json', 'w'))\n"
)


def _json(cli: Cli, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli.run("plots", *args, "--json").stdout)
    return data


def _spec(result: dict[str, Any], plot: str) -> dict[str, Any]:
    entry = result["data"][plot]
    assert len(entry) == 1 and entry[0]["type"] == "vega"
    spec: dict[str, Any] = entry[0]["content"]
    return spec


def _points(spec: dict[str, Any], *, rev: str | None = None) -> list[tuple[Any, Any]]:
    """(x, y) of every datapoint (of one revision), read through the fields the chart encodes."""
    x, y = _encoded(spec, "x"), _encoded(spec, "y")
    return [(p[x], p[y]) for p in spec["data"]["values"] if rev is None or p["rev"] == rev]


def _encoded(spec: dict[str, Any], channel: str) -> str:
    field: str = spec["encoding"][channel]["field"]
    return field.replace("\\", "")


def _pipeline(workspace: Workspace, body: dict[str, Any]) -> None:
    workspace.write({"pipeline.yaml": yaml.safe_dump(body, sort_keys=False)})


def _trained(workspace: Workspace, cli: Cli, lr: str, **plot: Any) -> None:
    """params.yaml `lr`, the train stage declaring train.json a (cached) plot, and `pipe repro`."""
    workspace.write({"train.py": TRAIN_PY, "params.yaml": f"lr: {lr}\n"})
    _pipeline(workspace, {"stages": {"train": {
        "cmd": f"{sys.executable} train.py", "deps": ["train.py"], "params": ["lr"],
        "plots": [{"train.json": {"x": "step", "y": "acc", **plot}}]}}})
    cli.run("repro", "-q")


def _train_rows(lr: float) -> list[tuple[int, float]]:
    return [(i, round(1 - lr / (i + 1), 4)) for i in range(4)]


# -- show ---------------------------------------------------------------------------------------


def test_show_plots_a_stage_plot_with_exactly_the_rows_of_its_file(workspace: Workspace, cli: Cli) -> None:
    _trained(workspace, cli, "0.5", title="Accuracy")

    spec = _spec(_json(cli, "show"), "train.json")

    assert _points(spec, rev="workspace") == _train_rows(0.5)
    assert spec["title"]["text"] == "Accuracy"
    assert spec["encoding"]["x"]["title"] == "step" and spec["encoding"]["y"]["title"] == "acc"
    assert {p["rev"] for p in spec["data"]["values"]} == {"workspace"}


def test_show_writes_a_page_and_an_svg_and_png_per_plot(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"logs/loss.csv": LOSS_CSV})
    _pipeline(workspace, {"plots": [{"logs/loss.csv": {"x": "epoch", "y": "loss"}}]})

    result = cli.run("plots", "show", "-o", "out")

    page = workspace.root / "out" / "index.html"
    assert result.stdout.strip() == page.as_uri()
    html = page.read_text()
    embedded = json.loads(html.split('id="pipe-plots">')[1].split("</script>")[0])
    assert [_points(plot["spec"]) for plot in embedded] == [LOSS_ROWS]
    assert "window.vegaEmbed" in html and "<script src" not in html and "<link" not in html  # all inlined
    svg = (workspace.root / "out/static/logs_loss.csv.svg").read_text()
    xml.dom.minidom.parseString(svg)
    assert (workspace.root / "out/static/logs_loss.csv.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_open_opens_the_page_in_a_browser(workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *args, **kwargs: opened.append(url) or True)
    workspace.write({"loss.csv": LOSS_CSV})

    cli.run("plots", "show", "loss.csv", "--open")

    assert opened == [(workspace.root / "pipe_plots/index.html").as_uri()]


def test_show_infers_step_and_the_last_column_as_dvc_does(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"loss.tsv": LOSS_CSV.replace(",", "\t")})

    spec = _spec(_json(cli, "show", "loss.tsv"), "loss.tsv")

    assert _encoded(spec, "x") == "step" and _encoded(spec, "y") == "acc"
    assert _points(spec) == [(0, 0.5), (1, 0.7), (2, 0.8)]


@pytest.mark.parametrize(("name", "text"), [
    ("records.json", json.dumps([{"x": 1, "y": 2.5}, {"x": 2, "y": 3.5}])),
    ("nested.json", json.dumps({"roc": [{"x": 1, "y": 2.5}, {"x": 2, "y": 3.5}]})),
    ("records.yaml", "- {x: 1, y: 2.5, day: 2024-01-01}\n- {x: 2, y: 3.5, day: 2024-01-02}\n"),
    ("noheader.csv", "1,2.5\n2,3.5\n"),
])
def test_show_reads_json_yaml_and_csv_records(workspace: Workspace, cli: Cli, name: str, text: str) -> None:
    workspace.write({name: text})
    columns = ["-x", "0", "-y", "1", "--no-header"] if name.endswith(".csv") else ["-x", "x", "-y", "y"]

    spec = _spec(_json(cli, "show", name, *columns), name)

    assert _points(spec) == [(1, 2.5), (2, 3.5)]


def test_show_of_a_directory_plot_draws_each_file(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"logs": {"a.csv": "x,y\n1,2\n", "b.csv": "x,y\n1,3\n", "notes.txt": "-"}})
    _pipeline(workspace, {"plots": [{"logs": {"x": "x", "y": "y"}}]})

    result = _json(cli, "show")

    assert sorted(result["data"]) == ["logs/a.csv", "logs/b.csv"]
    assert _points(_spec(result, "logs/b.csv")) == [(1, 3)]


def test_targets_choose_plots_by_id_or_path(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"a.csv": "x,y\n1,2\n", "b.csv": "x,y\n1,3\n"})
    _pipeline(workspace, {"plots": ["a.csv", {"both": {"x": "x", "y": {"a.csv": "y", "b.csv": "y"}}}]})

    assert sorted(_json(cli, "show", "both")["data"]) == ["both"]
    assert sorted(_json(cli, "show", "b.csv")["data"]) == ["both"]
    assert sorted(_json(cli, "show")["data"]) == ["a.csv", "both"]


def test_unknown_target_names_it(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"a.csv": "x,y\n1,2\n"})
    _pipeline(workspace, {"plots": ["a.csv"]})

    result = cli.run("plots", "show", "nope.csv", exit_code=1)

    assert "'nope.csv'" in result.stderr and "'workspace'" in result.stderr and "pipe plots show" in result.stderr


def test_no_plots_is_an_error_with_the_next_step(workspace: Workspace, cli: Cli) -> None:
    result = cli.run("plots", "show", exit_code=1)

    assert "no plots" in result.stderr and "plots:" in result.stderr


def test_a_missing_column_is_reported_with_the_columns_the_file_has(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"a.csv": "x,y\n1,2\n", "b.csv": "x,y\n1,3\n"})
    _pipeline(workspace, {"plots": [{"a.csv": {"y": "nope"}}, "b.csv"]})

    result = cli.run("plots", "show", "--json")

    assert sorted(json.loads(result.stdout)["data"]) == ["b.csv"]
    assert "a.csv" in result.stderr and "'nope'" in result.stderr and "x, y" in result.stderr


# -- diff ---------------------------------------------------------------------------------------


def test_diff_overlays_two_revisions_each_with_its_own_points(workspace: Workspace, cli: Cli) -> None:
    _pipeline(workspace, {"plots": [{"loss.csv": {"x": "epoch", "y": "loss"}}]})
    old, new = workspace.history([{"loss.csv": LOSS_CSV}, {"loss.csv": LOSS_CSV.replace("0.4,", "0.2,")}])

    spec = _spec(_json(cli, "diff", old, new), "loss.csv")

    assert _points(spec, rev=old) == LOSS_ROWS
    assert _points(spec, rev=new) == [(0, 1.0), (1, 0.6), (2, 0.2)]
    assert spec["encoding"]["color"]["field"] == "rev"  # the legend names each revision
    assert spec["encoding"]["color"]["scale"]["domain"] == [old, new]


def test_diff_targets_take_every_argument_up_to_the_next_option(workspace: Workspace, cli: Cli) -> None:
    _pipeline(workspace, {"plots": ["a.csv", "b.csv", "c.csv"]})
    (old,) = workspace.history([{"a.csv": "x,y\n1,2\n", "b.csv": "x,y\n1,3\n", "c.csv": "x,y\n1,4\n"}])

    result = json.loads(cli.run("plots", "diff", old, "--targets", "a.csv", "c.csv", "--json").stdout)

    assert sorted(result["data"]) == ["a.csv", "c.csv"]
    assert result["data"]["a.csv"][0]["revisions"] == [old, "workspace"]


def test_show_vega_prints_one_targets_spec(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"loss.csv": LOSS_CSV})

    spec = json.loads(cli.run("plots", "show", "loss.csv", "-x", "epoch", "-y", "loss", "--show-vega").stdout)

    assert _points(spec) == LOSS_ROWS and not (workspace.root / "pipe_plots").exists()
    assert "exactly one target" in cli.run("plots", "show", "--show-vega", exit_code=2).stderr


def test_diff_names_the_workspace_as_dvc_does(workspace: Workspace, cli: Cli) -> None:
    _pipeline(workspace, {"plots": ["loss.csv"]})
    (old,) = workspace.history([{"loss.csv": LOSS_CSV}])
    workspace.write({"loss.csv": LOSS_CSV.replace("0.4,", "0.2,")})

    result = _json(cli, "diff", "workspace", old)

    assert result["data"]["loss.csv"][0]["revisions"] == ["workspace", old]


def test_diff_without_revisions_is_head_against_the_workspace(workspace: Workspace, cli: Cli) -> None:
    _trained(workspace, cli, "0.5")
    workspace.commit("lr 0.5")
    _trained(workspace, cli, "0.2")

    result = _json(cli, "diff")

    spec = _spec(result, "train.json")
    assert result["data"]["train.json"][0]["revisions"] == ["HEAD", "workspace"]
    # HEAD's train.json is not in git (a cached out): it comes from the cache by the lock's oid
    assert _points(spec, rev="HEAD") == _train_rows(0.5)
    assert _points(spec, rev="workspace") == _train_rows(0.2)


def test_diff_of_a_cached_plot_whose_object_is_gone_names_fetch_rev(workspace: Workspace, cli: Cli) -> None:
    _trained(workspace, cli, "0.5")
    workspace.commit("lr 0.5")
    old_oid = workspace.lock()["stages"]["train"]["outs"][0]["oid"]
    _trained(workspace, cli, "0.2")
    obj = workspace.root / ".pipe/cache/objects" / old_oid[:2] / old_oid[2:]
    obj.chmod(0o644)
    obj.unlink()

    result = cli.run("plots", "diff", "HEAD", exit_code=0)

    assert "train.json" in result.stderr and "'pipe fetch --rev HEAD'" in result.stderr


def test_diff_skips_a_revision_without_the_file_and_says_so(workspace: Workspace, cli: Cli) -> None:
    _pipeline(workspace, {"plots": ["loss.csv"]})
    first = workspace.history([{"README": "no data yet\n"}])[0]
    workspace.write({"loss.csv": LOSS_CSV})

    result = cli.run("plots", "diff", first, "--json")

    assert json.loads(result.stdout)["data"]["loss.csv"][0]["revisions"] == ["workspace"]
    assert f"at '{first}'" in result.stderr and "no such file" in result.stderr


# -- DVC's example-get-started layout (dvclive's eval/ directory, top-level plots) ----------------

GET_STARTED_PLOTS = [
    {"ROC": {"template": "simple", "x": "fpr",
             "y": {"eval/plots/sklearn/roc/train.json": "tpr", "eval/plots/sklearn/roc/test.json": "tpr"}}},
    {"Confusion-Matrix": {"template": "confusion", "x": "actual",
                          "y": {"eval/plots/sklearn/cm/train.json": "predicted",
                                "eval/plots/sklearn/cm/test.json": "predicted"}}},
    "eval/plots/images/importance.png",
]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
EVALUATE_PY = """
import json, os, sys
shift = float(open("params.yaml").read().split(":")[1])
for split, offset in (("train", 0.0), ("test", shift)):
    os.makedirs("eval/plots/sklearn/roc", exist_ok=True)
    os.makedirs("eval/plots/sklearn/cm", exist_ok=True)
    roc = [{"fpr": f / 4, "tpr": min(1.0, f / 4 + offset), "threshold": 1 - f / 4} for f in range(5)]
    json.dump({"roc": roc}, open(f"eval/plots/sklearn/roc/{split}.json", "w"))
    cm = [{"actual": str(a), "predicted": str(p)} for a, p in ((0, 0), (0, 1), (1, 1), (1, 1))]
    json.dump(cm, open(f"eval/plots/sklearn/cm/{split}.json", "w"))
os.makedirs("eval/plots/images", exist_ok=True)
open("eval/plots/images/importance.png", "wb").write(bytes.fromhex(sys.argv[1]))
json.dump({"avg_prec": {"test": 0.9}}, open("eval/metrics.json", "w"))
"""


def _get_started(workspace: Workspace, cli: Cli, shift: str) -> None:
    workspace.write({"evaluate.py": EVALUATE_PY, "params.yaml": f"shift: {shift}\n"})
    _pipeline(workspace, {
        "stages": {"evaluate": {"cmd": f"{sys.executable} evaluate.py {PNG.hex()}", "deps": ["evaluate.py"],
                                "params": ["shift"], "outs": ["eval"]}},
        "metrics": ["eval/metrics.json"], "plots": GET_STARTED_PLOTS,
    })
    cli.run("repro", "-q")


def test_get_started_layout_shows_roc_confusion_and_image(workspace: Workspace, cli: Cli) -> None:
    _get_started(workspace, cli, "0.1")

    result = _json(cli, "show")

    roc = _spec(result, "ROC")
    test_points = [(p["fpr"], p["tpr"]) for p in roc["data"]["values"] if p["filename"] == "test.json"]
    assert test_points == [(f / 4, min(1.0, f / 4 + 0.1)) for f in range(5)]
    assert {p["filename"] for p in roc["data"]["values"]} == {"train.json", "test.json"}
    confusion = _spec(result, "Confusion-Matrix")
    assert [(p["actual"], p["predicted"]) for p in confusion["data"]["values"] if p["filename"] == "train.json"] == [
        ("0", "0"), ("0", "1"), ("1", "1"), ("1", "1")]
    image = result["data"]["eval/plots/images/importance.png"]
    assert image[0]["type"] == "image" and Path(image[0]["url"]).read_bytes() == PNG


def test_get_started_layout_diffs_against_the_cached_eval_directory_of_head(workspace: Workspace, cli: Cli) -> None:
    _get_started(workspace, cli, "0.1")
    workspace.commit("baseline")
    _get_started(workspace, cli, "0.3")

    result = cli.run("plots", "diff", "-o", "out")

    assert result.stdout.strip().endswith("out/index.html")
    spec = _spec(_json(cli, "diff"), "ROC")
    test_tpr = {rev: [p["tpr"] for p in spec["data"]["values"] if p["rev"] == rev and p["filename"] == "test.json"]
                for rev in ("HEAD", "workspace")}
    assert test_tpr == {"HEAD": [min(1.0, f / 4 + 0.1) for f in range(5)],
                        "workspace": [min(1.0, f / 4 + 0.3) for f in range(5)]}
    for name in ("ROC", "Confusion-Matrix"):
        assert (workspace.root / "out/static" / f"{name}.png").read_bytes().startswith(b"\x89PNG")


# -- templates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_every_template_renders_svg_and_png(workspace: Workspace, cli: Cli, template: str) -> None:
    data = "actual,predicted\n0,0\n0,1\n1,1\n" if template.startswith("confusion") else "step,value\n0,1.5\n1,2.5\n"
    x, y = ("actual", "predicted") if template.startswith("confusion") else ("step", "value")
    if template.startswith("bar"):
        x, y = "value", "step"
    workspace.write({"d.csv": data})

    cli.run("plots", "show", "d.csv", "-t", template, "-x", x, "-y", y, "-o", "out")

    svg = (workspace.root / "out/static/d.csv.svg").read_text()
    assert xml.dom.minidom.parseString(svg).documentElement.tagName == "svg"
    assert (workspace.root / "out/static/d.csv.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    spec = _spec(_json(cli, "show", "d.csv", "-t", template, "-x", x, "-y", y), "d.csv")
    first, second = data.split("\n")[0].split(",")
    assert [(p[first], p[second]) for p in spec["data"]["values"]] == [
        tuple(int(v) if v.isdigit() else float(v) for v in line.split(",")) for line in data.splitlines()[1:]]


def test_templates_lists_exports_and_prints(workspace: Workspace, cli: Cli) -> None:
    listed = cli.run("plots", "templates").stdout.split()
    assert listed == list(TEMPLATE_NAMES)

    assert "<PIPE_DATA>" in json.dumps(json.loads(cli.run("plots", "templates", "linear").stdout))

    cli.run("plots", "templates", "-o", "mine")
    assert sorted(p.stem for p in (workspace.root / "mine").glob("*.json")) == sorted(TEMPLATE_NAMES)
    (workspace.root / "mine/linear.json").write_text("{}")
    result = cli.run("plots", "templates", "linear", "-o", "mine", exit_code=1)
    assert "mine/linear.json" in result.stderr


def test_custom_template_from_dot_pipe_plots_is_used_first(workspace: Workspace, cli: Cli) -> None:
    # written with DVC's anchors, as a DVC user's .dvc/plots/ template is
    custom = {"data": {"values": "<DVC_METRIC_DATA>"}, "mark": "bar", "title": "custom <DVC_METRIC_TITLE>",
              "encoding": {"x": {"field": "<DVC_METRIC_X>", "type": "ordinal"},
                           "y": {"field": "<DVC_METRIC_Y>", "type": "quantitative"}}}
    workspace.write({".pipe/plots/linear.json": json.dumps(custom), "d.csv": "x,y\n1,2\n"})

    spec = _spec(_json(cli, "show", "d.csv", "-x", "x", "-y", "y"), "d.csv")

    assert spec["mark"] == "bar" and spec["title"] == "custom d.csv"
    assert _points(spec) == [(1, 2)]
    assert cli.run("plots", "templates").stdout.split()[:2] == ["linear", "(.pipe/plots/linear.json)"]


# -- hostile input -------------------------------------------------------------------------------


def test_a_plot_file_with_an_alias_bomb_is_refused_cleanly(workspace: Workspace, cli: Cli) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
    workspace.write({"bomb.yaml": bomb})

    result = cli.run("plots", "show", "bomb.yaml", exit_code=1)

    assert "bomb.yaml" in result.stderr and "alias" in result.stderr.lower()
    assert not (workspace.root / "pipe_plots").exists()


def test_script_in_a_title_or_template_is_escaped_in_the_page(workspace: Workspace, cli: Cli) -> None:
    evil = "</script><script>document.title='pwned'</script><img src=x onerror=alert(1)>"
    custom = {"data": {"values": "<PIPE_DATA>"}, "mark": "line", "title": evil + " <PIPE_TITLE>",
              "encoding": {"x": {"field": "<PIPE_X>", "type": "quantitative"},
                           "y": {"field": "<PIPE_Y>", "type": "quantitative"}}}
    workspace.write({".pipe/plots/evil.json": json.dumps(custom), "d.csv": "x,y\n1,2\n"})
    _pipeline(workspace, {"plots": [{"d.csv": {"template": "evil", "title": evil, "x": "x", "y": "y"}}]})

    cli.run("plots", "show", "-o", "out")

    html = (workspace.root / "out/index.html").read_text()
    assert "<script>document.title" not in html and "<img src=x" not in html
    assert html.count("</script>") == 3  # the bundle, the specs, the embedding script: nothing closes early
    xml.dom.minidom.parseString((workspace.root / "out/static/d.csv.svg").read_text())


def test_a_template_that_loads_data_by_url_is_refused(workspace: Workspace, cli: Cli) -> None:
    custom = {"data": {"values": "<PIPE_DATA>"}, "layer": [{"data": {"url": "file:///etc/passwd"}, "mark": "text"}]}
    workspace.write({".pipe/plots/leak.json": json.dumps(custom), "d.csv": "x,y\n1,2\n"})

    result = cli.run("plots", "show", "d.csv", "-t", "leak", exit_code=1)

    assert ".pipe/plots/leak.json" in result.stderr and "url" in result.stderr


def test_a_linked_template_is_not_followed(workspace: Workspace, cli: Cli) -> None:
    outside = workspace.root.parent / "outside.json"
    outside.write_text(json.dumps({"data": {"values": "<PIPE_DATA>"}, "mark": "point"}))
    (workspace.root / ".pipe/plots").mkdir()
    (workspace.root / ".pipe/plots/linked.json").symlink_to(outside)
    workspace.write({"d.csv": "x,y\n1,2\n"})

    result = cli.run("plots", "show", "d.csv", "-t", "linked", "--json", exit_code=1)

    assert "'linked' not found" in result.stderr


def test_a_template_vega_lite_refuses_is_an_error_naming_the_plot(workspace: Workspace, cli: Cli) -> None:
    custom = {"data": {"values": "<PIPE_DATA>"}, "mark": "no-such-mark"}
    workspace.write({".pipe/plots/broken.json": json.dumps(custom), "d.csv": "x,y\n1,2\n"})

    result = cli.run("plots", "show", "d.csv", "-t", "broken", exit_code=1)

    assert "plot 'd.csv'" in result.stderr and "does not render" in result.stderr


def test_without_vl_convert_the_page_needs_the_plots_extra_and_json_still_works(
        workspace: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace.write({"d.csv": "x,y\n1,2\n"})
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # `import vl_convert` raises ImportError

    result = cli.run("plots", "show", "d.csv", exit_code=1)

    assert "pipeline-engine[plots]" in result.stderr
    assert _points(_spec(_json(cli, "show", "d.csv", "-x", "x", "-y", "y"), "d.csv")) == [(1, 2)]
