"""Top-level metrics/plots/artifacts and stage plot options: DVC's forms -> typed values, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_engine.errors import SpecError, UnsafePathError
from pipeline_engine.pipeline.outputs import ArtifactSpec, PlotOptions, PlotSource, PlotSpec
from pipeline_engine.pipeline.spec import PipelineSpec, parse_spec


def spec(tmp_path: Path, text: str) -> PipelineSpec:
    return parse_spec(text, root=tmp_path)


def test_every_dvc_form_of_top_level_plots(tmp_path: Path) -> None:
    text = """\
plots:
  - eval/prc.json
  - eval/roc.json:
      x: fpr
      y: tpr
      title: ROC
  - ./eval/loss.csv:
      y: [train, test]
  - train_vs_test:
      template: linear
      x: step
      y:
        eval/train.json: acc
        eval/test.json: [acc, loss]
  - per_file_x:
      x: {a.csv: t, b.csv: time}
      y: {a.csv: v, b.csv: v}
      x_label: time
      y_label: value
  - eval/confusion.png
  - empty:
"""
    plots = spec(tmp_path, text).plots
    assert plots == (
        PlotSpec("eval/prc.json", (PlotSource("eval/prc.json"),)),
        PlotSpec("eval/roc.json", (PlotSource("eval/roc.json", "fpr", ("tpr",)),), title="ROC"),
        PlotSpec("eval/loss.csv", (PlotSource("eval/loss.csv", None, ("train", "test")),)),
        PlotSpec("train_vs_test", (PlotSource("eval/train.json", "step", ("acc",)),
                                   PlotSource("eval/test.json", "step", ("acc", "loss"))), template="linear"),
        PlotSpec("per_file_x", (PlotSource("a.csv", "t", ("v",)), PlotSource("b.csv", "time", ("v",))),
                 x_label="time", y_label="value"),
        PlotSpec("eval/confusion.png", (PlotSource("eval/confusion.png"),)),
        PlotSpec("empty", (PlotSource("empty"),)),
    )
    assert plots[5].sources[0].is_image and not plots[0].sources[0].is_image


def test_top_level_metrics_are_project_paths_without_repeats(tmp_path: Path) -> None:
    assert spec(tmp_path, "metrics: [eval/metrics.json, ./eval/metrics.json, eval/more]\n").metrics == (
        "eval/metrics.json", "eval/more")


def test_artifacts_are_typed(tmp_path: Path) -> None:
    text = ("artifacts:\n  text-classification:\n    path: models/model.pkl\n    type: model\n"
            "    desc: a model\n    labels: [nlp, v2]\n    meta: {framework: sklearn}\n"
            "  data/reviews:\n    path: data/reviews.csv\n")
    arts = spec(tmp_path, text).artifacts
    assert list(arts) == ["text-classification", "data/reviews"]
    model = arts["text-classification"]
    assert (model.name, model.path, model.type, model.desc, model.labels, dict(model.meta)) == (
        "text-classification", "models/model.pkl", "model", "a model", ("nlp", "v2"), {"framework": "sklearn"})
    assert arts["data/reviews"] == ArtifactSpec("data/reviews", "data/reviews.csv")


def test_stage_plot_options_are_typed(tmp_path: Path) -> None:
    text = ("stages:\n  s:\n    cmd: x\n    plots:\n      - roc.csv: {x: fpr, y: tpr, template: smooth, header: false,"
            " x_label: FPR, y_label: TPR, title: ROC, cache: false}\n      - plain.csv\n")
    outs = spec(tmp_path, text).stages["s"].outs
    assert outs[0].plot == PlotOptions("fpr", "tpr", "smooth", "ROC", "FPR", "TPR", False)
    assert outs[1].plot == PlotOptions() and not outs[0].cache


@pytest.mark.parametrize(("text", "message"), [
    ("plots:\n  - ../x.csv\n", "leaves the project"),
    ("plots:\n  - p:\n      y: {.git/config: a}\n", "'.git'"),
    ("metrics: [/etc/passwd]\n", "must be relative"),
    ("artifacts:\n  m: {path: ../../m.pkl}\n", "leaves the project"),
])
def test_every_path_goes_through_the_path_gate(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UnsafePathError, match=message):
        spec(tmp_path, text)


@pytest.mark.parametrize(("text", "message"), [
    ("plots:\n  - a.csv\n  - ./a.csv\n", r"pipeline.yaml:1: plots: 'a.csv' is defined twice"),
    ("plots:\n  - p:\n      y: {a.csv: 3}\n", r"pipeline.yaml:1: plots: 'p': 'y' of 'a.csv' must be a column name"),
    ("plots:\n  - p:\n      x: {b.csv: t}\n      y: {a.csv: v}\n", r"plots: 'p': 'x' names 'b.csv', which 'y' does not"),
    ("plots:\n  - p:\n      y: {}\n", r"plots: 'p': 'y' must name at least one data file"),
    ("plots:\n  - p:\n      z: 1\n", r"plots: 'p': unknown key 'z'"),
    ("plots:\n  - p:\n      title: 3\n", r"plots: 'p': 'title' must be a string"),
    ("plots:\n  - p: [1]\n", r"plots: 'p': the options must be a mapping"),
    ("artifacts:\n  Model: {path: m.pkl}\n", r"pipeline.yaml:1: artifacts: invalid name 'Model'"),
    ("artifacts:\n  -m: {path: m.pkl}\n", r"artifacts: invalid name '-m'"),
    ("artifacts:\n  m/: {path: m.pkl}\n", r"artifacts: invalid name 'm/'"),
    ("artifacts:\n  m: {type: model}\n", r"artifacts: 'm': needs 'path'"),
    ("artifacts:\n  m: {path: m.pkl, labels: x}\n", r"artifacts: 'm': 'labels' must be a list of strings"),
    ("artifacts:\n  m: {path: m.pkl, meta: [1]}\n", r"artifacts: 'm': 'meta' must be a mapping"),
    ("artifacts:\n  m: {path: m.pkl, owner: me}\n", r"artifacts: 'm': unknown key 'owner'"),
])
def test_errors_name_the_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        spec(tmp_path, text)


def test_a_stage_plot_option_of_the_wrong_type_names_the_stage_and_file(tmp_path: Path) -> None:
    text = "stages:\n  s:\n    cmd: x\n    plots:\n      - roc.csv: {x: '${n}'}\n"
    (tmp_path / "params.yaml").write_text("n: 3\n")
    with pytest.raises(SpecError, match=r"stage 's': 'roc.csv': 'x' must be a string, not 3"):
        spec(tmp_path, text)
