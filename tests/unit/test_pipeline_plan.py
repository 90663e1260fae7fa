"""The rerun decision (DESIGN.md §3), rule by rule, and as a property over random DAGs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_engine.core.hashing import Oid
from pipeline_engine.core.record import PathRecord
from pipeline_engine.pipeline.lock import StageLock
from pipeline_engine.pipeline.plan import Decision, ReasonKind, StageState, decide, propagate
from pipeline_engine.pipeline.spec import OutSpec, ParamsDep, StageSpec


def rec(path: str, n: int) -> PathRecord:
    return PathRecord(path, Oid(f"{n:032x}"), n)


STAGE = StageSpec("s", "run", deps=("d",), outs=(OutSpec("o"),), params=(ParamsDep("params.yaml", ("lr",)),),
                  env=("MODE",))
LOCK = StageLock("run", (rec("d", 1),), {"params.yaml": {"lr": 0.1}}, {"MODE": "a"}, (rec("o", 2),))
STATE = StageState({"d": rec("d", 1)}, {"params.yaml": {"lr": 0.1}}, {"MODE": "a"}, {"o": rec("o", 2)})


def kinds(d: Decision) -> list[ReasonKind]:
    return [r.kind for r in d.reasons]


def with_state(**changes: object) -> StageState:
    fields = {"deps": STATE.deps, "params": STATE.params, "env": STATE.env, "outs": STATE.outs,
              "uncached": STATE.uncached, **changes}
    return StageState(**fields)  # type: ignore[arg-type]


def test_unchanged_stage_does_not_run() -> None:
    assert decide(STAGE, LOCK, STATE) == Decision("s", ())


def test_rule_1_never_ran() -> None:
    assert kinds(decide(STAGE, None, STATE)) == [ReasonKind.NEVER_RAN]


def test_rule_2_cmd_changed_with_old_and_new() -> None:
    d = decide(StageSpec("s", "run2", deps=STAGE.deps, outs=STAGE.outs, params=STAGE.params, env=STAGE.env),
               LOCK, STATE)
    assert [(r.kind, r.old, r.new) for r in d.reasons] == [(ReasonKind.CMD_CHANGED, "run", "run2")]


def test_rule_3_dep_modified_missing_added_removed() -> None:
    assert decide(STAGE, LOCK, with_state(deps={"d": rec("d", 9)})).reasons[0].describe() == "dep 'd' modified"
    assert kinds(decide(STAGE, LOCK, with_state(deps={"d": None}))) == [ReasonKind.DEP_MISSING]
    more = StageSpec("s", "run", deps=("d", "e"), outs=STAGE.outs, params=STAGE.params, env=STAGE.env)
    assert kinds(decide(more, LOCK, with_state(deps={"d": rec("d", 1), "e": rec("e", 1)}))) == [ReasonKind.DEP_ADDED]
    fewer = StageSpec("s", "run", outs=STAGE.outs, params=STAGE.params, env=STAGE.env)
    assert decide(fewer, LOCK, with_state(deps={})).reasons[0].describe() == "dep 'd' removed"


def test_rule_4_params_changed_added_removed_type() -> None:
    d = decide(STAGE, LOCK, with_state(params={"params.yaml": {"lr": 0.2}}))
    assert [r.describe() for r in d.reasons] == ["param 'lr' 0.1 -> 0.2"]
    d = decide(STAGE, LOCK, with_state(params={"params.yaml": {"lr": 0.1, "ep": 3}}))
    assert d.reasons[0].describe() == "param 'ep' added"
    assert kinds(decide(STAGE, LOCK, with_state(params={}))) == [ReasonKind.PARAM_REMOVED]
    assert kinds(decide(STAGE, LOCK, with_state(params={"params.yaml": {"lr": "0.1"}}))) == [ReasonKind.PARAM_CHANGED]
    other = decide(STAGE, LOCK, with_state(params={"params.yaml": {"lr": 0.1}, "o.json": {"k": 1}}))
    assert other.reasons[0].describe() == "param 'o.json:k' added"


def test_rule_5_env() -> None:
    d = decide(STAGE, LOCK, with_state(env={"MODE": "b"}))
    assert [(r.kind, r.subject, r.old, r.new) for r in d.reasons] == [(ReasonKind.ENV_CHANGED, "MODE", "a", "b")]
    assert "'a' -> 'b'" in d.reasons[0].explain()


def test_rule_6_outs_missing_modified_uncached_and_restorable() -> None:
    missing = decide(STAGE, LOCK, with_state(outs={"o": None}))
    assert kinds(missing) == [ReasonKind.OUT_MISSING] and missing.is_restorable
    assert kinds(decide(STAGE, LOCK, with_state(outs={"o": rec("o", 5)}))) == [ReasonKind.OUT_MODIFIED]
    uncached = decide(STAGE, LOCK, with_state(uncached=frozenset({"o"})))
    assert kinds(uncached) == [ReasonKind.OUT_NOT_CACHED] and not uncached.is_restorable


def test_rule_8_always_changed_and_force_and_frozen() -> None:
    always = StageSpec("s", "run", deps=STAGE.deps, outs=STAGE.outs, params=STAGE.params, env=STAGE.env,
                       always_changed=True)
    assert kinds(decide(always, LOCK, STATE)) == [ReasonKind.ALWAYS_CHANGED]
    assert kinds(decide(STAGE, LOCK, STATE, force=True)) == [ReasonKind.FORCED]
    frozen = StageSpec("s", "other", frozen=True)
    assert decide(frozen, None, StageState()) == Decision("s", (), frozen=True)


def test_rule_6_exec_bit_of_a_file_out_is_a_restorable_modification() -> None:
    execd = PathRecord("o", Oid(f"{2:032x}"), 2, isexec=True)
    d = decide(STAGE, LOCK, with_state(outs={"o": execd}))
    assert [(r.kind, r.old, r.new) for r in d.reasons] == [
        (ReasonKind.OUT_MODIFIED, "not executable", "executable")
    ]
    assert d.is_restorable and "executable" in d.reasons[0].explain()
    recorded = StageLock("run", LOCK.deps, LOCK.params, LOCK.env, (execd,))
    assert kinds(decide(STAGE, recorded, STATE)) == [ReasonKind.OUT_MODIFIED]
    assert decide(STAGE, recorded, with_state(outs={"o": execd})) == Decision("s", ())


def test_stage_without_deps_params_or_outs_always_runs() -> None:
    callback = StageSpec("s", "notify")
    lock = StageLock("notify", (), {}, {}, ())
    d = decide(callback, lock, StageState())
    assert kinds(d) == [ReasonKind.NO_DEPS_NO_OUTS] and not d.is_restorable
    assert "every 'pipe repro'" in d.reasons[0].explain()
    with_param = StageSpec("s", "notify", params=STAGE.params)
    assert decide(with_param, StageLock("notify", (), STATE.params, {}, ()), StageState(params=STATE.params)).reasons == ()


# --- property: random DAGs -------------------------------------------------------------------

@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], dict[str, set[str]], set[str]]:
    n = draw(st.integers(1, 12))
    names = [f"s{i}" for i in range(n)]
    upstream = {name: set(draw(st.sets(st.sampled_from(names[:i])))) if i else set()
                for i, name in enumerate(names)}
    changed = draw(st.sets(st.sampled_from(names)))
    return names, upstream, changed


@settings(max_examples=200, deadline=None)
@given(dags())
def test_a_stage_runs_iff_it_or_an_upstream_changed(dag: tuple[list[str], dict[str, set[str]], set[str]]) -> None:
    names, upstream, changed = dag
    decisions = {}
    for name in names:
        spec = StageSpec(name, "run", deps=(f"{name}.in",))
        lock = StageLock("run", (rec(f"{name}.in", 1),))
        now = rec(f"{name}.in", 2 if name in changed else 1)
        decisions[name] = decide(spec, lock, StageState(deps={f"{name}.in": now}))
    result = propagate(names, upstream, decisions)
    assert [d.stage for d in result] == names

    def ancestors(name: str) -> set[str]:
        seen: set[str] = set()
        stack = list(upstream[name])
        while stack:
            up = stack.pop()
            if up not in seen:
                seen.add(up)
                stack.extend(upstream[up])
        return seen

    for d in result:
        assert d.runs == (d.stage in changed or bool(ancestors(d.stage) & changed))
    if not changed:
        assert not any(d.runs for d in result)
