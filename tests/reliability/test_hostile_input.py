"""Hostile input files: every file pipe reads from git (or from a shared cache) may be malformed.

Each hypothesis example starts from a valid file of one kind in a real project (git repo, tracked
data, a run pipeline, a local remote), mutates it (wrong types, deletions, huge numbers, aliases,
deep nesting, duplicate keys, random bytes, truncation), and drives one CLI command over it. Every
command must end with exit 0 or 1 (never an uncaught exception: exit 70 in real runs), name the file
when it fails, and change nothing on disk (read-only commands never; the others only when they
succeed), in the project and in a directory beside it.

Seeded: PIPE_SEED (default 0) and PIPE_TRIALS (examples per file kind, default 50: about a minute) reproduce a run.
PIPE_HOSTILE_LOG=FILE appends one line per example (file, mutation, command, exit code, output) for a summary.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from pipeline_engine.cli import cli as pipe_cli
from tests.conftest import GIT_ENV, Cli, Workspace

pytestmark = pytest.mark.reliability

SEED = int(os.environ.get("PIPE_SEED", "0"))
TRIALS = int(os.environ.get("PIPE_TRIALS", "50"))
HOSTILE = "HOSTILEPAYLOAD"  # a plain scalar in YAML and JSON, replaced by a text payload after dumping
BOMB = "[&a0 [x,x,x,x,x,x,x,x,x], " + ", ".join(f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)) + "]"


# ---------------------------------------------------------------------------------------------
# The project every example starts from
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    """A directory holding `proj/` (the project), `remote/` (its pushed remote) and `outside/`."""

    base: Path
    manifest: str  # project-relative path of the directory manifest of `d`
    run_entry: str  # project-relative path of one run-cache entry


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def pipe(*args: str) -> Any:
    return CliRunner().invoke(pipe_cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    base = tmp_path_factory.mktemp("hostile-template")
    proj, outside = base / "proj", base / "outside"
    proj.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("do not touch\n")
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=proj, check=True, env=env)
    files = {
        "params.yaml": "lr: 0.1\nepochs: 3\nmodel:\n  layers: [8, 4]\n  act: relu\n",
        "params.json": json.dumps({"batch": 32, "opt": {"name": "adam", "betas": [0.9, 0.99]}}, indent=1),
        "params.toml": 'seed = 1\nname = "run"\n[aug]\nflip = true\nscale = 0.5\n',
        "data.txt": "rows\n" * 10,
        "d/a.txt": "a\n",
        "d/sub/b.txt": "b\n",
        "pipeline.yaml": yaml.safe_dump({"stages": {
            "train": {
                "cmd": "cat data.txt d/a.txt > model.bin",
                "deps": ["data.txt", "d"],
                "params": ["lr", "model.layers", {"params.json": ["batch", "opt.name"]},
                           {"params.toml": ["seed", "aug.flip"]}],
                "outs": ["model.bin"],
            },
            "report": {"cmd": "cp model.bin report.txt", "deps": ["model.bin"], "outs": ["report.txt"]},
        }}, sort_keys=False),
    }
    with chdir(proj):
        assert pipe("init").exit_code == 0
        for rel, text in files.items():
            (proj / rel).parent.mkdir(parents=True, exist_ok=True)
            (proj / rel).write_text(text)
        for args in (("add", "data.txt"), ("add", "d"), ("repro",), ("remote", "add", "-d", "r", "../remote"),
                     ("push", "--run-cache")):
            result = pipe(*args)
            assert result.exit_code == 0, f"pipe {' '.join(args)}: {result.output}"
    (proj / ".pipe" / "config.local.yaml").write_text("schema: 1\ncore:\n  jobs: 2\n")
    subprocess.run(["git", "add", "-A"], cwd=proj, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "template"], cwd=proj, check=True, env=env)
    manifest = next(p for p in (proj / ".pipe" / "cache" / "objects").rglob("*.dir"))
    run_entry = next(p for p in (proj / ".pipe" / "cache" / "runs").rglob("*") if p.is_file())
    return Template(base, manifest.relative_to(proj).as_posix(), run_entry.relative_to(proj).as_posix())


# ---------------------------------------------------------------------------------------------
# Snapshots
# ---------------------------------------------------------------------------------------------

def snapshot(root: Path, *, skip: Callable[[str], bool] = lambda rel: False) -> dict[str, str]:
    """Every file, link and directory under `root` with a digest of its content and mode."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if skip(rel):
                continue
            st_ = path.lstat()
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = f"{st_.st_mode:o}:" + hashlib.sha256(path.read_bytes()).hexdigest()
        dirnames[:] = [d for d in dirnames if not skip((Path(dirpath) / d).relative_to(root).as_posix())]
    return out


def _volatile(rel: str) -> bool:
    # .pipe/tmp holds locks and the hash memo; git may refresh its index's stat data; every command
    # registers the project (by its path, new for each copy) with the cache it uses.
    return rel.startswith((".pipe/tmp/", ".pipe/cache/projects/")) or rel in (".pipe/tmp", ".git/index")


# ---------------------------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------------------------

HOSTILE_VALUES = st.one_of(
    st.sampled_from([
        None, True, False, 0, -1, 2**63, 2**64, 10**30, "", ".", "..", "../outside/secret.txt",
        "/etc/passwd", ".git", ".git/hooks/post-commit", ".pipe/config.yaml", "a\x00b", "a\nb", "\x1b[31mred",
        "x" * 300, "é/ü", [], {}, [[[]]], {"a": {"b": {}}}, ["x", 1, None], "0" * 32, "a" * 32 + ".dir",
        {"dir": "../outside"}, {"type": ["symlink"]}, {"url": "../outside"}, {"url": "file:///"},
        {"path": "../outside/secret.txt", "oid": "0" * 32, "size": 1}, {"cmd": "touch ../outside/x"},
    ]),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)

#: Text put where a value was: deep nesting, alias bombs, self-aliases, numbers no parser should
#: keep, tags, duplicate keys in a flow mapping.
PAYLOADS_YAML = [
    "[" * 5000 + "]" * 5000, "[" * 150 + "]" * 150, BOMB, "&s [*s]", "1e400", "1.0e400", "9" * 5000,
    "0x" + "f" * 40, ".nan", "-.inf", "!!binary aGVsbG8=", "!!python/object/apply:os.system [true]",
    "!!set {a: null}", "!!timestamp nope", "!!int ''", "{a: 1, a: 2}", "2001-02-30", "<<", "*undefined",
    '"\\x1b[2J\\x00"',
]
PAYLOADS_JSON = [
    "[" * 100_000 + "]" * 100_000, "[" * 150 + "]" * 150, "1e400", "-1e400", "NaN", "Infinity",
    "9" * 5000, "18446744073709551616", '{"a": 1, "a": 2}', '"\\u0000\\u001b"', '"\\ud800"', "[1,]",
]
PAYLOADS_TOML = [
    "inf", "-inf", "nan", "9" * 30, "[" * 5000 + "]" * 5000, "[" * 150 + "]" * 150, '"\\u0000"',
    "{a = 1, a = 2}", "1979-05-27T07:32:00Z", "0x" + "f" * 40,
]


def paths_in(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists (the root included)."""
    found = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            found += paths_in(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += paths_in(v, (*prefix, i))
    return found


def set_at(data: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


@st.composite
def mutated(draw: st.DrawFn, original: bytes, fmt: str) -> tuple[str, bytes]:
    """A description of the mutation and the mutated bytes of a file in format `fmt`."""
    how = draw(st.sampled_from(["value", "delete", "extra-key", "payload", "truncate", "bytes", "dup-line"]))
    text = original.decode()
    if how in ("value", "delete", "extra-key", "payload") and fmt != "toml":
        data = yaml.safe_load(text) if fmt == "yaml" else json.loads(text)
        path = draw(st.sampled_from(paths_in(data)))
        if how == "delete" and path:
            data = set_at(data, path, None, delete=True)
        elif how == "extra-key":
            target = data
            for part in path:
                target = target[part]
            if isinstance(target, dict):
                key = draw(st.sampled_from([
                    "unknown", "schema", "path", "oid", "outs", "cmd", "url", "cache", "core", "remotes", "dir",
                    "type", "jobs", "remote", "no_scm", "nfiles", "isexec", "size", "hash", "deps", "params",
                    "env", "stages", "wdir", "foreach", "do", "vars", "frozen", "<<",
                ]))
                target[key] = draw(HOSTILE_VALUES)
        elif how == "payload":
            data = set_at(data, path, HOSTILE)
        else:
            data = set_at(data, path, draw(HOSTILE_VALUES))
        dumped = yaml.safe_dump(data, sort_keys=False) if fmt == "yaml" else json.dumps(data)
        if how == "payload":
            payload = draw(st.sampled_from(PAYLOADS_YAML if fmt == "yaml" else PAYLOADS_JSON))
            dumped = dumped.replace(f'"{HOSTILE}"' if fmt == "json" else HOSTILE, payload)
            return f"{how} at {list(path)!r}: {payload[:40]!r}", dumped.encode()
        return f"{how} at {list(path)!r}", dumped.encode()
    if how in ("value", "delete", "extra-key", "payload"):  # TOML: replace one value's text
        lines = text.splitlines(keepends=True)
        index = draw(st.sampled_from([i for i, line in enumerate(lines) if " = " in line]))
        key = lines[index].split(" = ")[0]
        payload = draw(st.sampled_from(PAYLOADS_TOML))
        lines[index] = f"{key} = {payload}\n"
        return f"toml {key} = {payload[:40]!r}", "".join(lines).encode()
    if how == "truncate":
        cut = draw(st.integers(0, max(len(original) - 1, 0)))
        return f"truncated at {cut}", original[:cut]
    if how == "bytes":
        at = draw(st.integers(0, len(original)))
        junk = draw(st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from([b"\xff\xfe", b"\x00", b"\xc3"])))
        return f"bytes {junk!r} at {at}", original[:at] + junk + original[at:]
    lines = original.splitlines(keepends=True)
    index = draw(st.integers(0, len(lines) - 1))
    return f"line {index} duplicated", b"".join([*lines[: index + 1], lines[index], *lines[index + 1:]])


# ---------------------------------------------------------------------------------------------
# The file kinds and the commands that read them
# ---------------------------------------------------------------------------------------------

STATUS, DRY, CHECKOUT, GC, PUSH = ("status",), ("repro", "--dry"), ("checkout",), ("gc", "-w", "--dry"), ("push",)
# Commands that write: a hostile file may change the workspace through them only as a valid one would.
WRITERS = (("checkout", "--force"), ("pull",))
READ_ONLY = {STATUS, DRY, GC}


@dataclass(frozen=True)
class Kind:
    """One kind of file: where it is in the template, its format, what reads it, how errors name it."""

    relpath: str
    fmt: str
    commands: tuple[tuple[str, ...], ...]
    names: tuple[str, ...]
    drop: tuple[str, ...] = ()  # files removed first, so that the commands reach this file


KINDS = {
    # A valid pipeline.yaml may name a param that is not there: the error names the stage and the param.
    "pipeline.yaml": Kind("pipeline.yaml", "yaml", (STATUS, DRY), ("pipeline.yaml", "stage '")),
    "pipeline.lock": Kind("pipeline.lock", "yaml", (STATUS, DRY, CHECKOUT, GC, PUSH, *WRITERS), ("pipeline.lock",)),
    "params.yaml": Kind("params.yaml", "yaml", (STATUS, DRY), ("params.yaml",)),
    "params.json": Kind("params.json", "json", (STATUS, DRY), ("params.json",)),
    "params.toml": Kind("params.toml", "toml", (STATUS, DRY), ("params.toml",)),
    "pointer": Kind("data.txt.pipe", "yaml", (STATUS, CHECKOUT, GC, PUSH, *WRITERS), ("data.txt",)),
    "dir pointer": Kind("d.pipe", "yaml", (STATUS, CHECKOUT, GC, PUSH, *WRITERS), ("d.pipe", "'d'", " d")),
    # A config that lost its remotes is still valid: push then says that no remote is set.
    "config.yaml": Kind(".pipe/config.yaml", "yaml", (STATUS, GC, PUSH), (".pipe/config.yaml", "remote")),
    "config.local.yaml": Kind(
        ".pipe/config.local.yaml", "yaml", (STATUS, GC, PUSH), (".pipe/config.local.yaml", "remote"),
    ),
    "manifest": Kind("<manifest>", "json", (STATUS, CHECKOUT, GC, PUSH, *WRITERS), (".dir", "'d'", "manifest")),
    # Without the lock, repro looks its stages up in the run cache (and restores or runs them).
    "run-cache entry": Kind(
        "<run entry>", "json", (DRY, ("repro",), ("push", "--run-cache")), ("runs",), drop=("pipeline.lock",),
    ),
}


def run_example(template: Template, work: Path, kind: Kind, how: str, content: bytes, command: tuple[str, ...]) -> None:
    if work.exists():
        shutil.rmtree(work, onerror=lambda fn, p, exc: (os.chmod(p, 0o700), fn(p)))
    shutil.copytree(template.base, work, symlinks=True)
    proj = work / "proj"
    rel = {"<manifest>": template.manifest, "<run entry>": template.run_entry}.get(kind.relpath, kind.relpath)
    target = proj / rel
    target.chmod(0o644)  # cache objects are read-only
    target.write_bytes(content)
    for name in kind.drop:
        (proj / name).unlink()
    before = snapshot(work, skip=lambda r: _volatile(r.removeprefix("proj/")))
    with chdir(proj):
        result = CliRunner().invoke(pipe_cli, list(command), catch_exceptions=True)
    context = (
        f"PIPE_SEED={SEED}: {rel} ({how}), pipe {' '.join(command)} -> exit {result.exit_code}\n"
        f"--- file\n{content[:600]!r}\n--- output\n{result.output[-2000:]}"
    )
    if os.environ.get("PIPE_HOSTILE_LOG"):
        with open(os.environ["PIPE_HOSTILE_LOG"], "a") as log:
            log.write(f"{rel}\t{how[:60]!r}\t{' '.join(command)}\t{result.exit_code}\t{result.output.strip()[-150:]!r}\n")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"uncaught {type(result.exception).__name__} (exit 70 in a real run)\n{context}\n{tb[-3000:]}")
    assert result.exit_code in (0, 1), context
    if result.exit_code == 1:
        assert any(name in result.output for name in kind.names), f"the error does not name the file\n{context}"
    after = snapshot(work, skip=lambda r: _volatile(r.removeprefix("proj/")))
    if command in READ_ONLY or result.exit_code == 1:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        # By design, a corrupt cache object is moved to the quarantine (and named): not a loss.
        changed = [k for k in changed if k != f"proj/{rel}" and not k.startswith("proj/.pipe/cache/quarantine")]
        assert not changed, f"files changed on disk: {changed[:10]}\n{context}"
    outside = {k: v for k, v in before.items() if k.startswith("outside")}
    assert outside == {k: v for k, v in after.items() if k.startswith("outside")}, context


@pytest.mark.parametrize("name", sorted(KINDS))
def test_hostile_file_never_crashes_and_changes_nothing(name: str, template: Template, tmp_path: Path) -> None:
    kind = KINDS[name]
    rel = {"<manifest>": template.manifest, "<run entry>": template.run_entry}.get(kind.relpath, kind.relpath)
    original = (template.base / "proj" / rel).read_bytes()

    @seed(SEED)
    @settings(max_examples=TRIALS, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=mutated(original, kind.fmt), command=st.sampled_from(kind.commands))
    def check(case: tuple[str, bytes], command: tuple[str, ...]) -> None:
        run_example(template, tmp_path / "example", kind, case[0], case[1], command)

    check()


# ---------------------------------------------------------------------------------------------
# The reproductions
# ---------------------------------------------------------------------------------------------

def files(workspace: Workspace) -> dict[str, bytes]:
    """The workspace's files (cache included), without the cache's registry of the projects using it."""
    return {k: v for k, v in workspace.snapshot().items() if not k.startswith(".pipe/cache/projects/")}


def alias_bomb() -> str:
    """The issue's params.yaml: 9 anchors, each a list of 9 aliases of the one before (9**9 leaves)."""
    lines = ["a: &a [x,x,x,x,x,x,x,x,x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join(["*" + chr(97 + i)] * 9) + "]" for i in range(8)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_in_params_fails_at_once_naming_the_file(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"params.yaml": alias_bomb()})
    workspace.write_pipeline({"s": {"cmd": "echo hi > o", "params": ["i"], "outs": ["o"]}})
    before = files(workspace)
    tracemalloc.start()
    try:
        result = cli.run("repro", exit_code=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "params.yaml" in result.output and "alias" in result.output, result.output
    assert peak < 100 * 2**20, f"the refusal allocated {peak / 2**20:.0f} MiB"
    assert files(workspace) == before


@pytest.mark.parametrize("size", ["1e400", "1.0e400", ".inf", "18446744073709551616", "-1", "true", "'12'", "[1]"])
def test_huge_or_wrong_size_in_pointer_is_an_error_naming_the_pointer(
    workspace: Workspace, cli: Cli, size: str
) -> None:
    workspace.write({"data.txt": "rows\n"})
    cli.run("add", "data.txt")
    text = workspace.read("data.txt.pipe")
    assert "size: 5" in text
    workspace.write({"data.txt.pipe": text.replace("size: 5", f"size: {size}")})
    before = files(workspace)
    for command in (("status",), ("checkout", "--force"), ("gc", "-w", "-f")):
        result = cli.run(*command, exit_code=1)
        assert "data.txt.pipe" in result.output and "size" in result.output, result.output
    assert files(workspace) == before


def test_100000_deep_params_json_is_an_error_naming_the_file(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"params.json": "[" * 100_000 + "]" * 100_000})
    workspace.write_pipeline({"s": {"cmd": "echo hi > o", "params": ["params.json"], "outs": ["o"]}})
    before = files(workspace)
    for command in (("status",), ("repro", "--dry"), ("repro",)):
        result = cli.run(*command, exit_code=1)
        assert "params.json" in result.output and "nested deeper" in result.output, result.output
    assert files(workspace) == before


def test_100000_deep_manifest_is_an_error_naming_the_path(workspace: Workspace, cli: Cli) -> None:
    workspace.write({"d": {"a.txt": "a\n"}})
    cli.run("add", "d")
    manifest = next((workspace.root / ".pipe" / "cache" / "objects").rglob("*.dir"))
    manifest.chmod(0o644)
    manifest.write_text("[" * 100_000 + "]" * 100_000)
    before = files(workspace)
    result = cli.run("status", exit_code=None)
    assert result.exit_code in (0, 1) and "d" in result.output, result.output
    result = cli.run("gc", "-w", "-f", exit_code=1)
    assert manifest.name in result.output, result.output
    assert files(workspace) == before


@pytest.mark.parametrize("field", ["env", "stage name"])
def test_a_name_ending_in_a_newline_is_refused_before_it_reaches_the_lock(
    workspace: Workspace, cli: Cli, field: str
) -> None:
    # JSON Schema patterns end with `$`, which Python's re also matches before a final newline.
    stage = {"cmd": "echo hi > o", "outs": ["o"], **({"env": ["A\n"]} if field == "env" else {})}
    workspace.write_pipeline({"s\n" if field == "stage name" else "s": stage})
    result = cli.run("repro", exit_code=1)
    assert "pipeline.yaml" in result.output, result.output
    assert not (workspace.root / "pipeline.lock").exists()


def test_pull_replaces_a_corrupt_manifest_in_the_cache(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    workspace.track({"d": {"a.txt": "a\n"}})
    workspace.add_remote(tmp_path / "remote", "r")
    cli.run("push")
    manifest = next((workspace.root / ".pipe" / "cache" / "objects").rglob("*.dir"))
    manifest.chmod(0o644)
    manifest.write_text("[1")
    cli.run("pull", exit_code=None)
    cli.run("pull")
    assert workspace.read("d/a.txt") == "a\n"


@pytest.mark.parametrize(
    "text",
    ["1: a\nfoo: b\n", "cache:\n  type: [[copy]]\n", "core:\n  jobs: true\n", "core:\n  jobs: 99999999999\n",
     "remotes:\n  1: {url: x}\n", "remotes:\n  r: {url: \"a\\nb\"}\n", "cache:\n  dir: [x]\n", "core: {1: x, a: y}\n"],
)
def test_wrong_types_in_config_are_errors_naming_the_file(workspace: Workspace, cli: Cli, text: str) -> None:
    workspace.write({".pipe": {"config.local.yaml": text}})
    before = files(workspace)
    for command in (("status",), ("gc", "-w", "--dry")):
        result = cli.run(*command, exit_code=1)
        assert ".pipe/config.local.yaml" in result.output, result.output
    assert files(workspace) == before
