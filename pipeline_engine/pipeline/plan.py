"""The rerun decision: compare a stage's current inputs and outs with its lock entry (DESIGN.md §3).

Pure functions, no I/O: the caller (ops/) hashes deps and outs and reads params and env, and
this module says whether the stage must run and every reason why.
"""

from __future__ import annotations

import enum
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline_engine.core.record import PathRecord
from pipeline_engine.pipeline.lock import StageLock
from pipeline_engine.pipeline.params import PARAMS_FILE
from pipeline_engine.pipeline.spec import StageSpec

__all__ = ["Decision", "Reason", "ReasonKind", "StageState", "decide", "is_callback", "propagate"]


class ReasonKind(enum.Enum):
    """Why a stage must run; the value is the short text `pipe status` shows."""

    NEVER_RAN = "never ran"
    CMD_CHANGED = "cmd changed"
    DEP_MODIFIED = "dep modified"
    DEP_ADDED = "dep added"
    DEP_REMOVED = "dep removed"
    DEP_MISSING = "dep missing"
    PARAM_CHANGED = "param changed"
    PARAM_ADDED = "param added"
    PARAM_REMOVED = "param removed"
    ENV_CHANGED = "env changed"
    OUT_ADDED = "out added"
    OUT_REMOVED = "out removed"
    OUT_MISSING = "out missing"
    OUT_MODIFIED = "out modified"
    OUT_NOT_CACHED = "out not in cache"
    UPSTREAM_CHANGED = "upstream changed"
    ALWAYS_CHANGED = "always changed"
    NO_DEPS_NO_OUTS = "always runs (no deps, params or outs)"
    FORCED = "forced"


#: Reasons a cached copy of the recorded outs can fix without running the command.
RESTORABLE = frozenset({ReasonKind.OUT_MISSING, ReasonKind.OUT_MODIFIED})


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason with its subject (dep path, param key, env name, stage) and old/new values."""

    kind: ReasonKind
    subject: str | None = None
    old: Any = None
    new: Any = None

    def describe(self) -> str:
        """One line for `pipe status`, e.g. `param 'train.lr' 0.1 -> 0.2`."""
        if self.subject is None:
            return self.kind.value
        noun, _, verb = self.kind.value.partition(" ")
        if self.kind is ReasonKind.PARAM_CHANGED:
            return f"param '{self.subject}' {_show(self.old)} -> {_show(self.new)}"
        if self.kind is ReasonKind.UPSTREAM_CHANGED:
            return f"upstream stage '{self.subject}' changed"
        return f"{noun} '{self.subject}' {verb}"

    def explain(self) -> str:
        """The full explanation for `pipe why`, with old and new values."""
        k = self.kind
        if k is ReasonKind.CMD_CHANGED:
            was, now = (textwrap.indent(_show_cmd(c).rstrip("\n"), "    ").lstrip() for c in (self.old, self.new))
            return f"the command changed:\n  was: {was}\n  now: {now}"
        if k is ReasonKind.DEP_MODIFIED:
            return f"dep '{self.subject}' changed content: {self.old} -> {self.new}"
        if k in (ReasonKind.PARAM_ADDED, ReasonKind.PARAM_REMOVED):
            value = self.new if k is ReasonKind.PARAM_ADDED else self.old
            return f"{self.describe()} (value {_show(value)})"
        if k is ReasonKind.ENV_CHANGED:
            return f"env variable '{self.subject}' changed: {_show(self.old)} -> {_show(self.new)}"
        if k is ReasonKind.NO_DEPS_NO_OUTS:
            return ("the stage has a command but no deps, params or outs, so nothing tells whether it is "
                    "up to date: it runs on every 'pipe repro' (as in DVC)")
        if k is ReasonKind.OUT_MODIFIED:
            return f"out '{self.subject}' differs from the recorded one: {self.old} -> {self.new}"
        if k is ReasonKind.UPSTREAM_CHANGED:
            return f"upstream stage '{self.subject}' will run and may change this stage's deps"
        return self.describe()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for `--json`."""
        return {"reason": self.kind.name.lower(), "subject": self.subject, "old": self.old,
                "new": self.new, "text": self.describe()}


def _show(value: Any) -> str:
    return "(unset)" if value is None else repr(value) if isinstance(value, str) else str(value)


def _show_cmd(cmd: Any) -> str:
    """A command for `pipe why`: a `cmd` list as its items, one `- item` per line."""
    return "\n".join(f"- {c}" for c in cmd) if isinstance(cmd, tuple) else str(cmd)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a stage runs (it does when `reasons` is not empty) and why."""

    stage: str
    reasons: tuple[Reason, ...] = ()
    frozen: bool = False

    @property
    def runs(self) -> bool:
        """True when the stage must run."""
        return bool(self.reasons)

    @property
    def is_restorable(self) -> bool:
        """True when only the outs differ from the lock, so cached outs can replace a run."""
        return self.runs and all(r.kind in RESTORABLE for r in self.reasons)


@dataclass(frozen=True, slots=True)
class StageState:
    """A stage's current inputs and outs: a None record means the path is missing."""

    deps: Mapping[str, PathRecord | None] = field(default_factory=dict)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env: Mapping[str, str | None] = field(default_factory=dict)
    outs: Mapping[str, PathRecord | None] = field(default_factory=dict)
    uncached: frozenset[str] = frozenset()


def decide(
    stage: StageSpec,
    lock: StageLock | None,
    state: StageState,
    *,
    force: bool = False,
    upstream: Sequence[str] = (),
) -> Decision:
    """Whether `stage` must run, following DESIGN.md §3; a frozen stage never runs."""
    if stage.frozen:
        return Decision(stage.name, (), frozen=True)
    reasons: list[Reason] = []
    if force:
        reasons.append(Reason(ReasonKind.FORCED))
    if stage.always_changed:
        reasons.append(Reason(ReasonKind.ALWAYS_CHANGED))
    elif is_callback(stage):
        reasons.append(Reason(ReasonKind.NO_DEPS_NO_OUTS))
    if lock is None:
        reasons.append(Reason(ReasonKind.NEVER_RAN))
        return Decision(stage.name, tuple(reasons))
    if stage.cmd != lock.cmd:
        reasons.append(Reason(ReasonKind.CMD_CHANGED, None, lock.cmd, stage.cmd))
    reasons += _dep_reasons(stage.deps, lock.deps, state.deps)
    reasons += _param_reasons(lock.params, state.params)
    reasons += _env_reasons(stage.env, lock.env, state.env)
    reasons += _out_reasons([o.path for o in stage.outs], lock.outs, state)
    reasons += [Reason(ReasonKind.UPSTREAM_CHANGED, up) for up in upstream]
    return Decision(stage.name, tuple(reasons))


def is_callback(stage: StageSpec) -> bool:
    """A stage with a command and nothing to compare (no deps, params or outs): DVC runs it every time."""
    return bool(stage.cmd) and not stage.deps and not stage.params and not stage.outs


def _dep_reasons(
    deps: Sequence[str], recorded: Sequence[PathRecord], current: Mapping[str, PathRecord | None]
) -> Iterable[Reason]:
    old = {r.path: r for r in recorded}
    for path in deps:
        now = current.get(path)
        if path not in old:
            yield Reason(ReasonKind.DEP_ADDED, path)
        elif now is None:
            yield Reason(ReasonKind.DEP_MISSING, path, old[path].oid, None)
        elif now.oid != old[path].oid:
            yield Reason(ReasonKind.DEP_MODIFIED, path, old[path].oid, now.oid)
    for path in sorted(set(old) - set(deps)):
        yield Reason(ReasonKind.DEP_REMOVED, path)


def _param_reasons(
    recorded: Mapping[str, Mapping[str, Any]], current: Mapping[str, Mapping[str, Any]]
) -> Iterable[Reason]:
    for file in sorted(set(recorded) | set(current)):
        old, new = recorded.get(file, {}), current.get(file, {})
        for key in sorted(set(old) | set(new)):
            subject = key if file == PARAMS_FILE else f"{file}:{key}"
            if key not in old:
                yield Reason(ReasonKind.PARAM_ADDED, subject, None, new[key])
            elif key not in new:
                yield Reason(ReasonKind.PARAM_REMOVED, subject, old[key], None)
            elif not _same(old[key], new[key]):
                yield Reason(ReasonKind.PARAM_CHANGED, subject, old[key], new[key])


def _same(a: Any, b: Any) -> bool:
    # 1 == 1.0 == True in Python; a param changing type is still a change.
    return type(a) is type(b) and a == b


def _env_reasons(
    names: Sequence[str], recorded: Mapping[str, str | None], current: Mapping[str, str | None]
) -> Iterable[Reason]:
    for name in sorted(set(names) | set(recorded)):
        if name not in names:
            yield Reason(ReasonKind.ENV_CHANGED, name, recorded[name], None)
        elif name not in recorded or recorded[name] != current.get(name):
            yield Reason(ReasonKind.ENV_CHANGED, name, recorded.get(name), current.get(name))


def _out_reasons(paths: Sequence[str], recorded: Sequence[PathRecord], state: StageState) -> Iterable[Reason]:
    old = {r.path: r for r in recorded}
    for path in paths:
        now = state.outs.get(path)
        if path not in old:
            yield Reason(ReasonKind.OUT_ADDED, path)
        elif now is None:
            yield Reason(ReasonKind.OUT_MISSING, path)
        elif now.oid != old[path].oid:
            yield Reason(ReasonKind.OUT_MODIFIED, path, old[path].oid, now.oid)
        elif not now.isdir and now.isexec != old[path].isexec:
            # Same bytes, other mode (DVC's isexec): restoring the recorded out resets the bit.
            yield Reason(ReasonKind.OUT_MODIFIED, path, _mode(old[path].isexec), _mode(now.isexec))
        elif path in state.uncached:
            yield Reason(ReasonKind.OUT_NOT_CACHED, path)
    for path in sorted(set(old) - set(paths)):
        yield Reason(ReasonKind.OUT_REMOVED, path)


def _mode(isexec: bool) -> str:
    return "executable" if isexec else "not executable"


def propagate(
    order: Sequence[str], upstream: Mapping[str, Iterable[str]], decisions: Mapping[str, Decision]
) -> list[Decision]:
    """Decisions in `order`, where a stage below one that runs runs too ("upstream changed").

    Used to predict (`status`, `--dry`); a real run decides each stage after its upstream
    finished, so identical upstream outputs stop the cascade there (early cutoff).
    """
    runs: set[str] = set()
    result: list[Decision] = []
    for name in order:
        d = decisions[name]
        changed = sorted(u for u in upstream.get(name, ()) if u in runs)
        if changed and not d.frozen:
            d = Decision(name, d.reasons + tuple(Reason(ReasonKind.UPSTREAM_CHANGED, u) for u in changed))
        if d.runs:
            runs.add(name)
        result.append(d)
    return result
