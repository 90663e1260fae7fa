"""`pipe import-dvc`: convert a DVC project in place, without running its stages.

The conversion is a list of `Step`s, planned first (what `--dry` prints) and then carried out:

1. `pipe init` when there is no `.pipe/` yet;
2. `.dvcignore` -> `.pipeignore`; `.dvc/config` remotes -> `.pipe/config.yaml` (credential options
   to `config.local.yaml`), the default remote kept;
3. data DVC tracks that is missing from the workspace is restored from DVC's cache
   (`.dvc/cache/files/md5/` for DVC 3, `.dvc/cache/` for DVC 2), or with `fetch_from_remote` from
   the default DVC remote (a local directory or any fsspec URL), each file checked against its md5;
4. `dvc.yaml` -> `pipeline.yaml` (the same syntax, copied as is);
5. each `*.dvc` -> `pipe add` of its outs (hashed with xxh3 and stored in pipe's cache);
6. `dvc.lock` -> `pipe commit`: every stage's deps, params and outs are measured in the workspace
   and recorded in `pipeline.lock` (and the outs cached), as if the stages had just run.

Every DVC file is untrusted: YAML through the bounded parser, paths through the path gate, md5s
checked as 32 hex digits before they name a file. Running it again changes nothing new. DVC's files
stay until `remove_dvc`. Not converted: DVC imports (`*.dvc` with `deps: [{repo: ...}]`), and
cached data of other revisions (only what the workspace revision uses enters pipe's cache).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_engine.cache.pointer import POINTER_SUFFIX, Pointer, parse_annotations, read_pointer, write_pointer
from pipeline_engine.core.pathgate import check_relpath, resolve_in_project
from pipeline_engine.core.yamlio import parse_yaml, read_utf8
from pipeline_engine.errors import PathError, PipeError, SpecError
from pipeline_engine.project import Project

__all__ = ["Step", "import_dvc"]

_MD5 = re.compile(r"^[0-9a-f]{32}$")
_SKIP_DIRS = {".git", ".dvc", ".pipe", "node_modules", ".venv"}
#: DVC remote option names pipe spells otherwise.
_RENAMED = {"endpointurl": "endpoint_url"}


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the import does (or, with --dry, would do): `what` is a short verb, `detail` the object."""

    what: str
    detail: str


def import_dvc(root: Path, *, dry: bool = False, remove_dvc: bool = False,
               fetch_from_remote: bool = False) -> list[Step]:
    """Convert the DVC project at `root` (see the module docstring); returns the steps, done or (dry) planned.

    Raises:
        PipeError: `root` holds no DVC project; a DVC file is invalid; pipeline.yaml exists with
            other content; data is missing from the workspace and from DVC's cache (and remote).
    """
    dvc_dir = root / ".dvc"
    has_yaml = _there(root / "dvc.yaml")
    pointers = sorted(_dvc_files(root))
    if not dvc_dir.is_dir() and not has_yaml and not pointers:
        raise PipeError(f"'{root}' holds no DVC project (no .dvc/, dvc.yaml or *.dvc files)",
                        hint="run 'pipe import-dvc' in the root of the DVC project")
    steps: list[Step] = []
    if not (root / ".pipe" / "config.yaml").is_file():
        steps.append(Step("init", "create .pipe/"))
    if (root / ".dvcignore").is_file() and not (root / ".pipeignore").exists():
        steps.append(Step("copy", ".dvcignore -> .pipeignore"))
    remotes, default = _dvc_remotes(dvc_dir)
    for name, opts in remotes.items():
        if (root / ".pipe" / "config.yaml").is_file() and name in Project(root).config.remotes:
            continue
        steps.append(Step("remote", f"{name}: {opts.get('url', '')}" + (" (default)" if name == default else "")))
    wanted = _wanted(root, pointers, has_yaml)
    missing = {p: e for p, e in wanted.items() if not (root / p).exists()}
    source = _source(root, remotes.get(default or "", {}), fetch_from_remote) if missing else _Source(None, (), "")
    for path, entry in missing.items():
        _check_available(source, path, entry)  # before anything changes: a failure leaves the project as it was
        steps.append(Step("restore", f"{path} from DVC's {'remote' if fetch_from_remote else 'cache'}"))
    if has_yaml:
        _load(root, "dvc.yaml")  # readable YAML (not a FIFO) before anything changes
        _check_pipeline(root)
        if not (root / "pipeline.yaml").is_file():
            steps.append(Step("convert", "dvc.yaml -> pipeline.yaml"))
    for pointer in pointers:
        if not (root / f"{pointer[:-4]}.pipe").is_file():
            steps.append(Step("track", f"{pointer} -> {pointer[:-4]}.pipe"))
    if _there(root / "dvc.lock"):
        steps.append(Step("lock", "dvc.lock -> pipeline.lock (stages not recorded yet: outs and deps hashed "
                                  "with xxh3, no stage runs)"))
    if remove_dvc:
        steps.append(Step("remove", "dvc.yaml, dvc.lock, *.dvc, .dvcignore"))
    if dry:
        return steps

    project = Project(root) if (root / ".pipe" / "config.yaml").is_file() else Project.init(root)
    if (root / ".dvcignore").is_file() and not (root / ".pipeignore").exists():
        shutil.copyfile(root / ".dvcignore", root / ".pipeignore")
    steps += _import_remotes(project, remotes, default)
    for path, entry in missing.items():
        _restore(root, path, entry, source)
    if has_yaml and not (root / "pipeline.yaml").is_file():
        shutil.copyfile(root / "dvc.yaml", root / "pipeline.yaml")
    from pipeline_engine.ops.add import add

    project = Project(root)
    todo = [p for ptr in pointers for p in _pointer_outs(root, ptr)]
    fresh = [p for p in todo if not (root / f"{p}.pipe").is_file()]
    if fresh:
        add(project, fresh)
    _carry_annotations(root, pointers)
    if has_yaml:
        steps += _record_stages(Project(root), source if fetch_from_remote else _source(root, {}, False))
    if remove_dvc:
        for name in ("dvc.yaml", "dvc.lock", ".dvcignore", *pointers):
            (root / name).unlink(missing_ok=True)
    return steps


def _record_stages(project: Project, source: _Source) -> list[Step]:
    """`pipe commit` the stages DVC would call up to date; a step for each one left for `pipe repro`."""
    from pipeline_engine.index.pipeline import load_pipeline
    from pipeline_engine.ops.commit import commit
    from pipeline_engine.ops.import_dvc_lock import stale_reason

    root = project.root
    locked = (_load(root, "dvc.lock") or {}).get("stages") if _there(root / "dvc.lock") else None
    if not isinstance(locked, dict):
        locked = {}

    def manifest(md5: str, path: str) -> list[dict[str, Any]] | None:
        try:
            return _manifest(source, md5, path)
        except PipeError:
            return None

    steps, fresh = [], []
    for name, stage in load_pipeline(project).stages.items():
        entry = locked.get(name)
        why = "it is not in dvc.lock" if not isinstance(entry, dict) else stale_reason(
            root, name, entry, stage.cmd, manifest)
        if why:
            steps.append(Step("stale", f"stage '{name}': {why}; 'pipe repro' runs it"))
        else:
            fresh.append(name)
    if fresh:
        commit(project, fresh)
    return steps


def _dvc_files(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for f in filenames:
            if f.endswith(".dvc") and f != ".dvc":
                yield Path(dirpath, f).relative_to(root).as_posix()


def _there(path: Path) -> bool:
    """A file is at `path` (a FIFO or device too: reading it refuses it by name, where skipping it
    would convert a project without its dvc.yaml, lock or config)."""
    return path.is_file() or (path.exists() and not path.is_dir())


def _load(root: Path, rel: str) -> Any:
    path = resolve_in_project(root, check_relpath(rel, source=rel), source=rel)
    return parse_yaml(read_utf8(path, source=rel), source=rel)  # a FIFO is refused by name, never waited on


def _pointer_outs(root: Path, pointer: str) -> list[str]:
    data = _load(root, pointer)
    if not isinstance(data, dict) or not isinstance(data.get("outs"), list):
        raise SpecError(f"{pointer}: not a DVC file (no 'outs' list)")
    if data.get("deps"):
        raise SpecError(f"{pointer}: a DVC import or stage file; 'pipe import-dvc' converts only 'dvc add' files",
                        hint=f"re-create it with 'pipe import' or 'pipe add', then remove {pointer}")
    base = str(Path(pointer).parent.as_posix()).removeprefix(".")
    outs = []
    for out in data["outs"]:
        if not isinstance(out, dict) or not isinstance(out.get("path"), str):
            raise SpecError(f"{pointer}: an out without 'path'")
        outs.append(check_relpath(f"{base}/{out['path']}".lstrip("/"), source=pointer))
    return outs


def _carry_annotations(root: Path, pointers: list[str]) -> None:
    """Copy each `*.dvc` out's annotations (desc, type, labels, meta) and the file's `meta` into
    the pipe pointer made for it, which keeps them from then on."""
    for dvc_file in pointers:
        data = _load(root, dvc_file)
        base = str(Path(dvc_file).parent.as_posix()).removeprefix(".")
        for out in data["outs"]:
            annotations = parse_annotations(out, source=f"{dvc_file}: outs")
            if not annotations and data.get("meta") is None:
                continue
            rel = check_relpath(f"{base}/{out['path']}".lstrip("/"), source=dvc_file) + POINTER_SUFFIX
            made = read_pointer(root, rel)
            write_pointer(root, Pointer(made.relpath, made.out, made.repo, annotations, data.get("meta")))


def _wanted(root: Path, pointers: list[str], has_yaml: bool) -> dict[str, dict[str, Any]]:
    """Workspace path -> DVC's out entry (md5/hash, isexec) for every cached out of the *.dvc files and dvc.lock."""
    found: dict[str, dict[str, Any]] = {}
    for pointer in pointers:
        data = _load(root, pointer)
        base = str(Path(pointer).parent.as_posix()).removeprefix(".")
        for out in (data or {}).get("outs") or []:
            if isinstance(out, dict) and isinstance(out.get("path"), str) and out.get("md5") and not data.get("deps"):
                found[check_relpath(f"{base}/{out['path']}".lstrip("/"), source=pointer)] = out
    if has_yaml and _there(root / "dvc.lock"):
        lock = _load(root, "dvc.lock")
        stages = (lock or {}).get("stages") or {}
        if not isinstance(stages, dict):
            raise SpecError("dvc.lock: 'stages' must be a mapping")
        for name, entry in stages.items():
            for out in (entry or {}).get("outs") or []:
                if isinstance(out, dict) and isinstance(out.get("path"), str) and out.get("md5"):
                    found[check_relpath(out["path"], source=f"dvc.lock: stage '{name}'")] = out
    return found


def _check_pipeline(root: Path) -> None:
    target = root / "pipeline.yaml"
    if target.is_file() and target.read_bytes() != (root / "dvc.yaml").read_bytes():
        raise SpecError("pipeline.yaml exists and differs from dvc.yaml; refusing to overwrite it",
                        hint="move pipeline.yaml away, or convert dvc.yaml by hand")


def _dvc_remotes(dvc_dir: Path) -> tuple[dict[str, dict[str, str]], str | None]:
    remotes: dict[str, dict[str, str]] = {}
    default = None
    for name in ("config", "config.local"):
        path = dvc_dir / name
        if not _there(path):
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(read_utf8(path, source=f".dvc/{name}")[:1_000_000], source=str(path))
        except configparser.Error as exc:
            raise SpecError(f".dvc/{name}: not a DVC config: {str(exc)[:200]}") from None
        for section in parser.sections():
            m = re.match(r"""^\s*['"]?remote\s+"([^"]+)"['"]?\s*$""", section)
            if m:
                opts = remotes.setdefault(m[1], {})
                opts.update(parser[section].items())
                if name == "config.local" and "url" in parser[section]:
                    opts["_local"] = "1"  # the whole remote is this machine's: it goes to config.local.yaml
            elif section.strip() == "core" and parser[section].get("remote"):
                default = parser[section]["remote"].strip()
    return remotes, default


def _import_remotes(project: Project, remotes: dict[str, dict[str, str]], default: str | None) -> list[Step]:
    """Add DVC's remotes not configured yet; credentials (as pipe's backends name them) go to the local file.

    Returns a step for each option dropped (one pipe's backend does not know).
    """
    from pipeline_engine.ops.remote import add_remote, modify_remote
    from pipeline_engine.remote.backend import is_secret

    dropped: list[Step] = []
    for name, opts in remotes.items():
        url = opts.get("url")
        if not url:
            continue
        if name in project.config.remotes:
            continue  # imported before (idempotent) or the user's own: left as it is
        local = opts.get("_local") == "1"
        add_remote(project, name, url, default=name == default, local=local)
        project = Project(project.root)
        for key, value in opts.items():
            if key in ("url", "_local"):
                continue
            key = _RENAMED.get(key, key)
            try:
                modify_remote(project, name, key, value, local=local or is_secret(url, key))
            except PipeError as exc:
                dropped.append(Step("drop", f"remote '{name}' option '{key}': {exc.message}"))
                continue
            project = Project(project.root)
    return dropped


@dataclass(frozen=True, slots=True)
class _Source:
    """Where DVC's md5-addressed objects are read from: `roots` on `fs` (None: the local filesystem)."""

    fs: Any
    roots: tuple[str, ...]
    label: str


def _source(root: Path, remote: dict[str, str], from_remote: bool) -> _Source:
    cache = root / ".dvc" / "cache"
    if not from_remote:
        return _Source(None, (str(cache / "files" / "md5"), str(cache)), "DVC's cache")
    url = remote.get("url")
    if not url:
        raise PipeError("--fetch-from-dvc-remote: .dvc/config has no default remote with a url")
    if "://" not in url:
        base = str((root / ".dvc" / url).resolve()) if not os.path.isabs(url) else url
        return _Source(None, (f"{base}/files/md5", base), f"DVC remote '{url}'")
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return _Source(fs, (f"{path.rstrip('/')}/files/md5", path.rstrip("/")), f"DVC remote '{url}'")


def _check_available(source: _Source, path: str, entry: dict[str, Any]) -> None:
    """Raise unless every object `entry` needs (a file's, or a directory manifest's and its files') is there."""
    md5 = str(entry.get("md5"))
    if not md5.endswith(".dir"):
        _object_path(source, md5, path)
        return
    for item in _manifest(source, md5, path):
        _object_path(source, str(item.get("md5")), f"{path}/{item['relpath']}")


def _object_path(source: _Source, md5: str, what: str) -> str:
    """Where DVC's object `md5` is in `source` (DVC 3's files/md5/ layout first, then DVC 2's).

    Raises:
        SpecError: `md5` is not an md5 (it never becomes a path).
        PipeError: no root holds it.
    """
    if not _MD5.match(md5.removesuffix(".dir")):
        raise SpecError(f"{what}: {md5!r:.60} is not an md5")
    for base in source.roots:
        path = f"{base}/{md5[:2]}/{md5[2:]}"
        try:
            if os.path.isfile(path) if source.fs is None else source.fs.exists(path):
                return path
        except OSError:
            continue
    raise PipeError(f"{what}: DVC object {md5} is neither in the workspace nor in {source.label}",
                    hint="run 'dvc pull' first, or pass --fetch-from-dvc-remote")


def _checked(source: _Source, md5: str, what: str) -> bytes:
    path = _object_path(source, md5, what)
    data: bytes = Path(path).read_bytes() if source.fs is None else source.fs.cat_file(path)
    if hashlib.md5(data).hexdigest() != md5.removesuffix(".dir") and not md5.endswith(".dir"):
        raise PipeError(f"{what}: DVC's object {md5} is corrupt (its md5 differs)")
    return data


def _manifest(source: _Source, md5: str, path: str) -> list[dict[str, Any]]:
    try:
        manifest = json.loads(_checked(source, md5, path))
    except ValueError:
        raise PipeError(f"{path}: DVC's directory manifest {md5} is not JSON") from None
    if not isinstance(manifest, list):
        raise PipeError(f"{path}: DVC's directory manifest {md5} is not a list")
    for item in manifest:
        if not isinstance(item, dict) or not isinstance(item.get("relpath"), str):
            raise PipeError(f"{path}: an entry of DVC's manifest {md5} has no relpath")
        check_relpath(f"{path}/{item['relpath']}", source=f"{path} (DVC manifest)")
    return manifest


def _restore(root: Path, path: str, entry: dict[str, Any], source: _Source) -> None:
    md5 = str(entry.get("md5"))
    if not md5.endswith(".dir"):
        _write(resolve_in_project(root, path, source=path), _checked(source, md5, path), bool(entry.get("isexec")))
        return
    for item in _manifest(source, md5, path):
        rel = f"{path}/{item['relpath']}"
        _write(resolve_in_project(root, rel, source=rel), _checked(source, str(item.get("md5")), rel),
               bool(item.get("isexec")))


def _write(dest: Path, data: bytes, isexec: bool) -> None:
    from pipeline_engine.core.fsutil import atomic_write

    if dest.is_symlink():
        raise PathError(f"'{dest}' is a symlink; not writing through it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dest, data)
    if isexec:
        dest.chmod(dest.stat().st_mode | 0o111)
