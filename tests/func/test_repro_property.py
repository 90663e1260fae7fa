"""Property: after any one edit, an incremental `repro` equals a from-scratch run and runs only what it must."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline_engine.ops.repro import ReproOptions, repro
from pipeline_engine.project import Project
from tests.func.repro_helpers import Counter


@dataclass(frozen=True)
class Stage:
    index: int
    upstream: tuple[int, ...]
    uses_deps: bool  # False: the out ignores dep content (an upstream change stops here: early cutoff)


@dataclass(frozen=True)
class Case:
    stages: tuple[Stage, ...]
    edit: str  # "src" | "param" | "cmd" | "touch"
    target: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(2, 5))
    stages = tuple(
        Stage(i, tuple(sorted(draw(st.sets(st.integers(0, i - 1))))) if i else (), draw(st.booleans()))
        for i in range(n)
    )
    return Case(stages, draw(st.sampled_from(["src", "param", "cmd", "touch"])), draw(st.integers(0, n - 1)))


def write_project(root: Path, counter: Counter, case: Case, *, edited: bool) -> None:
    stages = {}
    for s in case.stages:
        deps = [f"src{s.index}.txt", *(f"out{u}.txt" for u in s.upstream)]
        body = f"cat {' '.join(deps)} > out{s.index}.txt" if s.uses_deps else f"echo fixed > out{s.index}.txt"
        cmd = counter.cmd(f"s{s.index}", f"{body} && echo ${{p.s{s.index}}} >> out{s.index}.txt")
        if edited and case.edit == "cmd" and s.index == case.target:
            cmd += " # edited"
        stages[f"s{s.index}"] = {"cmd": cmd, "deps": deps, "outs": [f"out{s.index}.txt"]}
        src = root / f"src{s.index}.txt"
        text = f"source {s.index}\n" + ("edited\n" if edited and case.edit == "src" and s.index == case.target else "")
        if not src.exists() or src.read_text() != text:
            src.write_text(text)
    params = {f"s{s.index}": 2 if edited and case.edit == "param" and s.index == case.target else 1
              for s in case.stages}
    (root / "params.yaml").write_text(yaml.safe_dump({"p": params}))
    (root / "pipeline.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))


def signature(root: Path, case: Case, s: Stage) -> tuple[str, ...]:
    pipeline = yaml.safe_load((root / "pipeline.yaml").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    deps = [f"src{s.index}.txt", *(f"out{u}.txt" for u in s.upstream)]
    return (pipeline["stages"][f"s{s.index}"]["cmd"], str(params["p"][f"s{s.index}"]),
            *((root / d).read_text() for d in deps))


def run(root: Path) -> None:
    project = Project(root)
    try:
        repro(project, [], ReproOptions(jobs=2)).raise_for_failure()
    finally:
        project.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_incremental_repro_matches_scratch_and_runs_only_necessary_stages(case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        work, scratch = base / "work", base / "scratch"
        work.mkdir()
        scratch.mkdir()
        Project.init(work, scm=False).close()
        Project.init(scratch, scm=False).close()
        counter, scratch_counter = Counter(base / "counts"), Counter(base / "scratch_counts")

        write_project(work, counter, case, edited=False)
        run(work)
        before = {s.index: signature(work, case, s) for s in case.stages}
        runs_before = counter.snapshot()
        if case.edit == "touch":
            (work / f"src{case.target}.txt").touch()
        write_project(work, counter, case, edited=True)
        run(work)
        write_project(scratch, scratch_counter, case, edited=True)
        run(scratch)

        for s in case.stages:
            assert (work / f"out{s.index}.txt").read_bytes() == (scratch / f"out{s.index}.txt").read_bytes()
        ran = {name for name, n in counter.snapshot().items() if n > runs_before.get(name, 0)}
        # the counter's path differs between the two projects: compare cmd text without it
        must = {f"s{s.index}" for s in case.stages
                if _normalise(signature(scratch, case, s), base) != _normalise(before[s.index], base)}
        assert ran == must


def _normalise(sig: tuple[str, ...], base: Path) -> tuple[str, ...]:
    return tuple(x.replace(str(base / "scratch_counts"), "C").replace(str(base / "counts"), "C") for x in sig)
