"""`<path>.pipe` pointer files: the git-tracked record of a path added with `pipe add`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.pathgate import check_relpath
from pipeline_engine.core.record import PathRecord
from pipeline_engine.core.revision import RevisionFiles, decode_utf8
from pipeline_engine.core.schema import check_schema, memo_of, remember_valid
from pipeline_engine.core.yamlio import dump_yaml, parse_yaml, read_utf8
from pipeline_engine.errors import SpecError

__all__ = ["ANNOTATION_KEYS", "POINTER_SUFFIX", "Pointer", "SourceRepo", "parse_annotations", "parse_pointer",
           "read_pointer", "write_pointer"]

POINTER_SUFFIX = ".pipe"
SCHEMA_VERSION = 1
POINTER_SCHEMA = "pointer.schema.json"
#: The out's annotations a pointer keeps as written (DVC's `Annotation`: dvc/annotations.py).
ANNOTATION_KEYS = ("desc", "type", "labels", "meta")


@dataclass(frozen=True, slots=True)
class SourceRepo:
    """Where imported data came from (`pipe import`): a git URL, the path there, the revision asked for and the commit used.

    The URL is only ever passed to `git clone` (after `--`); `path` passes the path gate when read.
    """

    url: str
    path: str
    rev_lock: str
    rev: str | None = None

    def to_dict(self) -> dict[str, str]:
        """The on-disk mapping (see docs/format.md)."""
        d = {"url": self.url, "path": self.path, "rev_lock": self.rev_lock}
        if self.rev is not None:
            d["rev"] = self.rev
        return d

    @classmethod
    def from_dict(cls, raw: object, *, source: str) -> SourceRepo:
        """Parse and check an on-disk `repo:` mapping.

        Raises:
            SpecError: a key is missing or invalid; UnsafePathError: `path` escapes.
        """
        if not isinstance(raw, dict):
            raise SpecError(f"{source}: 'repo' must be a mapping with 'url', 'path' and 'rev_lock'")
        url, rev, lock = raw.get("url"), raw.get("rev"), raw.get("rev_lock")
        if not isinstance(url, str) or not url or not url.isprintable() or url.startswith("-"):
            raise SpecError(f"{source}: 'repo.url' must be a git URL")
        if rev is not None and (not isinstance(rev, str) or not rev or not rev.isprintable() or rev.startswith("-")):
            raise SpecError(f"{source}: 'repo.rev' must be a git revision name")
        if not isinstance(lock, str) or len(lock) != 40 or any(c not in "0123456789abcdef" for c in lock):
            raise SpecError(f"{source}: 'repo.rev_lock' must be a 40-digit commit sha")
        path = check_relpath(raw.get("path"), source=f"{source}: repo.path")
        return cls(url, path, lock, rev)


@dataclass(frozen=True, slots=True)
class Pointer:
    """A pointer file: where it is (project-relative) and the out it records; `repo` for an import.

    `out.path` is relative to the pointer's directory, as in DVC's `.dvc` files. `annotations` are
    the out's `desc`, `type`, `labels` and `meta` and `meta` the file's own, as DVC writes them:
    pipe only keeps them (a re-add writes them again) for people and tools that read them.
    """

    relpath: str
    out: PathRecord
    repo: SourceRepo | None = None
    annotations: Mapping[str, Any] = field(default_factory=dict)
    meta: Any = None

    def annotated(self, old: Pointer) -> Pointer:
        """This pointer with `old`'s annotations and meta (the same path added again)."""
        return Pointer(self.relpath, self.out, self.repo, old.annotations, old.meta)

    @property
    def data_relpath(self) -> str:
        """The tracked path, relative to the project root."""
        parent = self.relpath.rpartition("/")[0]
        return f"{parent}/{self.out.path}" if parent else self.out.path


def read_pointer(root_or_files: Path | RevisionFiles, relpath: str, *, memo: Path | None = None) -> Pointer:
    """Load the pointer file at project-relative `relpath`, in the workspace under a root or in any `RevisionFiles`.

    `memo` (the project's `.pipe/tmp`; by default the workspace's) skips the schema check of known texts.

    Raises:
        SpecError: the file is missing, unreadable or not a valid pointer (the message names it).
    """
    if isinstance(root_or_files, Path):
        try:
            text = read_utf8(root_or_files / relpath, source=relpath)
        except FileNotFoundError as exc:
            raise SpecError(f"{relpath}: cannot read: {exc.strerror or exc}") from exc
        return parse_pointer(text, relpath, memo=memo or memo_of(root_or_files))
    found = root_or_files.read_text(relpath)
    if found is None:
        raise SpecError(f"{root_or_files.describe(relpath)}: no such pointer file")
    return parse_pointer(found, relpath, source=root_or_files.describe(relpath), memo=memo or memo_of(root_or_files))


def parse_pointer(text: str | bytes, relpath: str, *, source: str | None = None, memo: Path | None = None) -> Pointer:
    """A pointer from its text; `relpath` is where it lies (project-relative), `source` names it in errors.

    After the checks below, the text is checked against schemas/pointer.schema.json unless it passed
    before (`memo`: the project's `.pipe/tmp`, see core.schema).

    Raises:
        SpecError: not a valid pointer; UnsafePathError (a SpecError) when the path it records
            does not pass the path gate.
    """
    source = source or relpath
    if isinstance(text, bytes):
        text = decode_utf8(text, source=source)
    raw = parse_yaml(text, source=source)
    if not isinstance(raw, dict) or not isinstance(raw.get("outs"), list) or len(raw["outs"]) != 1:
        raise SpecError(f"{source}: a pointer file needs 'outs' with exactly one entry")
    schema = raw.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise SpecError(f"{source}: unsupported schema {schema!r}; upgrade pipe")
    out = PathRecord.from_dict(raw["outs"][0], source=source)
    if "/" in out.path:
        raise SpecError(f"{source}: path '{out.path}' must name a file beside the pointer")
    repo = SourceRepo.from_dict(raw["repo"], source=source) if "repo" in raw else None
    annotations = parse_annotations(raw["outs"][0], source=f"{source}: outs")
    check_schema(raw, name=POINTER_SCHEMA, source=source, text=text, memo=memo)
    return Pointer(relpath, out, repo, annotations, raw.get("meta"))


def parse_annotations(raw: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """The annotations (`ANNOTATION_KEYS`) of an out entry, checked as DVC checks them: `desc` and
    `type` strings, `labels` a list of strings, `meta` a mapping.

    Raises:
        SpecError: one has the wrong type (the message names `source` and the key).
    """
    found = {k: raw[k] for k in ANNOTATION_KEYS if k in raw}
    for key in ("desc", "type"):
        if key in found and not isinstance(found[key], str):
            raise SpecError(f"{source}: '{key}' must be a string")
    if "labels" in found and not (isinstance(found["labels"], list) and all(isinstance(x, str) for x in found["labels"])):
        raise SpecError(f"{source}: 'labels' must be a list of strings")
    if "meta" in found and not isinstance(found["meta"], Mapping):
        raise SpecError(f"{source}: 'meta' must be a mapping")
    return found


def write_pointer(root: Path, pointer: Pointer) -> None:
    """Write a pointer file atomically, with stable key order."""
    data: dict[str, object] = {"schema": SCHEMA_VERSION, "outs": [{**pointer.out.to_dict(), **pointer.annotations}]}
    if pointer.repo is not None:
        data["repo"] = pointer.repo.to_dict()
    if pointer.meta is not None:
        data["meta"] = pointer.meta
    text = dump_yaml(data)
    remember_valid(POINTER_SCHEMA, text, memo=memo_of(root))  # pipe's own output: no check on the next read
    atomic_write(root / pointer.relpath, text)
