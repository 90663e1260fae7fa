"""Templating by DVC's rules: expression grammar, ${dict} flags, deep merge of vars, tracking, foreach/matrix."""

from __future__ import annotations

from pathlib import Path
from shlex import quote

import pytest

from pipeline_engine.errors import SpecError
from pipeline_engine.pipeline.interpolate import (
    BoolStyle,
    Context,
    ListStyle,
    Resolver,
    expand_foreach,
    expand_matrix,
    parse_expr,
    to_flags,
)
from pipeline_engine.pipeline.spec import ParamsDep, parse_spec

MIXED = "quote\"'d"
DVC_DICT = {
    "foo": "foo", "bar": 2, "string": "spaced string", "mixed_quote_string": MIXED, "bool": True,
    "bool-false": False, "list": [1, 2, "foo", MIXED], "nested": {"foo": "foo"},
}


@pytest.mark.parametrize(("bool_style", "list_style"), [(b, s) for b in BoolStyle for s in ListStyle])
def test_dict_flags_match_dvcs_test_cmd_dict(bool_style: BoolStyle, list_style: ListStyle) -> None:
    bools = " --bool" if bool_style is BoolStyle.STORE_TRUE else " --bool --no-bool-false"
    lists = (f" --list 1 2 foo {quote(MIXED)}" if list_style is ListStyle.NARGS
             else f" --list 1 --list 2 --list foo --list {quote(MIXED)}")
    expected = (f"--foo foo --bar 2 --string {quote('spaced string')} --mixed_quote_string {quote(MIXED)}"
                f"{bools}{lists} --nested.foo foo")
    assert to_flags(DVC_DICT, bool_style=bool_style, list_style=list_style, where="w") == expected


def test_a_nested_list_in_a_dict_flag_is_an_error() -> None:
    with pytest.raises(SpecError, match="cannot interpolate nested list in 'l'"):
        to_flags({"l": [[1]]}, bool_style=BoolStyle.STORE_TRUE, list_style=ListStyle.NARGS, where="w")


@pytest.mark.parametrize(("expr", "parts"), [
    ("a", ("a",)), ("a.b[0].c", ("a", "b", "0", "c")), ("a[b]", ("a", "b")), (" a.b ", ("a", "b")),
    ("a[-1]", ("a", "-1")), ("my-key.x_y", ("my-key", "x_y")),
])
def test_expression_grammar_is_dvcs(expr: str, parts: tuple[str, ...]) -> None:
    assert parse_expr(expr, where="w") == parts


@pytest.mark.parametrize("expr", ["", "a..b", "a[0]b", ".a", "a.", "a[]", "a[0"])
def test_malformed_expressions_are_refused(expr: str) -> None:
    with pytest.raises(SpecError, match="cannot parse"):
        parse_expr(expr, where="w")


def ctx_of(**sources: dict[str, object]) -> Context:
    ctx = Context()
    for name, data in sources.items():
        file = name.replace("__", ".")
        ctx = ctx.merged(data, label=file, source=file if file.endswith(".yaml") else None)
    return ctx


def test_merge_is_deep_and_redefinition_names_both_sources() -> None:
    ctx = ctx_of(params__yaml={"m": {"a": 1, "n": {"x": 1}}}, more__yaml={"m": {"b": 2, "n": {"y": 2}}})
    assert ctx.data == {"m": {"a": 1, "b": 2, "n": {"x": 1, "y": 2}}}
    with pytest.raises(SpecError, match=r"^cannot redefine 'm.n.x' from 'vars\[0\]' as it already exists in "
                                        r"'params.yaml'$"):
        ctx.merged({"m": {"n": {"x": 5}}}, label="vars[0]")
    with pytest.raises(SpecError, match="cannot redefine 'm' from 'vars"):
        ctx.merged({"m": 5}, label="vars[0]")


def test_used_keys_are_tracked_per_source_with_list_indexes() -> None:
    ctx = ctx_of(params__yaml={"m": {"a": 1}, "xs": [1, 2, 3]}, more__yaml={"m": {"b": 2}}, inline={"z": 1})
    r = Resolver(ctx, where="w")
    assert r.resolve("${m.a} ${xs[-1]} ${z}") == "1 3 1"
    assert r.used == {("params.yaml", "m.a"), ("params.yaml", "xs.2")}
    r = Resolver(ctx, where="w")
    assert r.resolve("${m}") == {"a": 1, "b": 2}
    assert r.used == {("params.yaml", "m"), ("more.yaml", "m.b")}  # m of params.yaml, m.b merged in


def test_a_mapping_or_list_only_as_a_whole_value_except_a_mapping_in_cmd() -> None:
    ctx = ctx_of(params__yaml={"xs": [1, 2], "m": {"a": 1}})
    r = Resolver(ctx, where="w")
    assert r.resolve("${xs}") == [1, 2] and r.resolve({"k": "${m}"}) == {"k": {"a": 1}}
    assert r.resolve("run ${m}", key="cmd") == "run --a 1" and r.resolve("${m}", key="cmd") == "--a 1"
    for text in ("a ${m}", "a ${xs}"):
        with pytest.raises(SpecError, match="cannot interpolate"):
            r.resolve(text, key="deps")


def test_reserved_names_cannot_be_redefined_by_vars() -> None:
    ctx = Context().with_names({"item": 1}, {})
    with pytest.raises(SpecError, match="attempted to modify reserved key 'item' in 'b.vars\\[0\\]'"):
        ctx.merged({"item": 2}, label="b.vars[0]")


def test_foreach_and_matrix_names_follow_dvc() -> None:
    assert [s for s, _, _ in expand_foreach(["a", {"x": 1}], where="w")] == ["0", "1"]  # composite: indexes
    assert [s for s, _, _ in expand_foreach([1, True], where="w")] == ["1", "true"]
    combos = list(expand_matrix({"lr": [0.1], "cfg": [{"a": 1}, {"a": 2}]}, where="w"))
    assert [(s, names["key"]) for s, names, _ in combos] == [("0.1-cfg0",) * 2, ("0.1-cfg1",) * 2]


def spec_of(tmp_path: Path, text: str, **files: str):  # type: ignore[no-untyped-def]
    for name, content in files.items():
        (tmp_path / name.replace("__", ".")).write_text(content)
    return parse_spec(text, root=tmp_path)


def test_vars_files_loaded_whole_twice_is_allowed_partially_twice_is_not(tmp_path: Path) -> None:
    files = {"params__yaml": "a: 1\nb: 2\n", "o__yaml": "x: 1\ny: 2\n"}
    spec = spec_of(tmp_path, "vars: [params.yaml, o.yaml:x]\nstages:\n  s:\n    cmd: echo ${a} ${x}\n", **files)
    assert spec.stages["s"].cmd == "echo 1 1"
    with pytest.raises(SpecError, match="cannot partially load 'params.yaml:a' as it's already loaded"):
        spec_of(tmp_path, "vars: [params.yaml:a]\nstages:\n  s:\n    cmd: echo\n")
    with pytest.raises(SpecError, match="cannot load 'o.yaml' as it's partially loaded already"):
        spec_of(tmp_path, "vars: [o.yaml:x, o.yaml]\nstages:\n  s:\n    cmd: echo\n")
    with pytest.raises(SpecError, match="could not find 'z' in 'o.yaml'"):
        spec_of(tmp_path, "vars: [o.yaml:z]\nstages:\n  s:\n    cmd: echo\n")
    with pytest.raises(SpecError, match="interpolating is not allowed"):
        spec_of(tmp_path, "vars: [{a2: '${a}'}]\nstages:\n  s:\n    cmd: echo\n")


def test_foreach_items_from_params_track_their_own_keys(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, """
stages:
  f:
    foreach: ${models}
    do: {cmd: "fit ${item.lr}"}
  g:
    matrix: {lr: "${rates}", opt: [sgd]}
    cmd: fit ${item.lr} ${item.opt} ${key}
""", params__yaml="models:\n  - {lr: 1}\n  - {lr: 2}\nrates: [0.1, 0.2]\n")
    assert spec.stages["f@1"].cmd == "fit 2"
    assert spec.stages["f@1"].params == (ParamsDep("params.yaml", ("models.1.lr",)),)
    assert spec.stages["g@0.2-sgd"].cmd == "fit 0.2 sgd 0.2-sgd"
    assert spec.stages["g@0.2-sgd"].params == (ParamsDep("params.yaml", ("rates.1",)),)


def test_stage_vars_resolve_relative_to_wdir_and_inside_do(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    spec = spec_of(tmp_path, """
stages:
  s:
    wdir: sub
    vars: [local.yaml]
    cmd: echo ${v}
  f:
    foreach: [a, b]
    do:
      vars: [{suffix: "-x"}]
      cmd: echo ${item}${suffix}
""", **{"sub/local.yaml": "v: 7\n"})
    assert spec.stages["s"].cmd == "echo 7" and spec.stages["s"].params == (ParamsDep("sub/local.yaml", ("v",)),)
    assert spec.stages["f@b"].cmd == "echo b-x"


def test_scalars_in_text_are_written_as_dvc_writes_them() -> None:
    ctx = ctx_of(params__yaml={"t": True, "f": False, "n": None, "x": 1e6, "i": 7, "s": "no"})
    assert Resolver(ctx, where="w").resolve("${t} ${f} ${n} ${x} ${i} ${s}") == "true false None 1000000.0 7 no"


def test_quoted_keys_are_not_part_of_dvcs_grammar() -> None:
    # DVC reads `${a['b']}` as the key "'b'" (quotes included), which is then not found; so does pipe.
    r = Resolver(ctx_of(params__yaml={"a": {"b": 1}}), where="w")
    assert r.resolve("${a[b]}") == 1
    with pytest.raises(SpecError, match="could not find 'a.'b''"):
        r.resolve("${a['b']}")
