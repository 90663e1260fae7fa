"""Where things live on disk: an object under a store root (`<first 2 hex>/<rest>`, the same locally and
remotely), the cache directory's parts, and the working files under the control directory's `tmp/`.

Every path below is built here and nowhere else, so the layout documented in docs/format.md is
this module:

```
.pipe/tmp/                        tmp_dir: never committed
    lock                          lock_path: the project lock (one pipe process changes a project)
    config.lock                   config_lock_path: held while a config file is edited
    memo.sqlite                   memo_path: the hash memo
    valid-texts                   valid_texts_path: digests of texts that passed their schema (core.schema)
    logs/<stage>.log, running/    logs_dir, running_dir: stage logs, running-stage records
    packs/                        packs_work_dir: packs being built or read (temporary files)
    packs/<remote key>/<name>.idx pack_index_cache: indexes downloaded from a remote's packs/
.pipe/cache/                      default_cache_dir (or `cache.dir`)
    objects/<2 hex>/<30 hex>      objects_dir: the object store (the same layout on every remote)
    objects/tmp/                  store_tmp_dir: single objects being written (batches and downloads
                                  are temporary names beside their fan-out directory)
    runs/<2 hex>/<30 hex>         runs_dir: the run cache (`<remote>/runs/` on a remote)
    quarantine/<oid>              quarantine_dir: corrupt objects, kept for inspection
<remote root>/tmp/                remote_tmp_dir: partial uploads of non-atomic backends (and a local
                                  remote's packs being built)
<remote root>/packs/<name>.pack   remote.packed: packs of small objects, each with <name>.idx
```
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline_engine.core.fsutil import temp_name
from pipeline_engine.core.hashing import Oid

__all__ = [
    "PIPELINE_FILE",
    "RUNS_DIR",
    "TMP_DIR",
    "config_lock_path",
    "default_cache_dir",
    "download_path",
    "is_valid_oid",
    "lock_path",
    "logs_dir",
    "memo_path",
    "objects_dir",
    "oid_to_relpath",
    "pack_index_cache",
    "packs_work_dir",
    "quarantine_dir",
    "relpath_to_oid",
    "remote_tmp_dir",
    "running_dir",
    "runs_dir",
    "store_tmp_dir",
    "tmp_dir",
    "valid_texts_path",
]

#: The pipeline file at a project's root (named here so that finding it needs no parser).
PIPELINE_FILE = "pipeline.yaml"
#: Under `.pipe/`: the project lock, the hash memo, stage logs and running-stage records, scratch files.
#: Under a store root (local or remote): temporary files that become objects.
TMP_DIR = "tmp"
#: Beside `objects/` in the cache, and under a remote's root: run-cache entries, in the object layout.
RUNS_DIR = "runs"
_OBJECTS_DIR = "objects"
_QUARANTINE_DIR = "quarantine"
_CACHE_DIR = "cache"

_OID_RE = re.compile(r"^[0-9a-f]{32}(\.dir)?$")


def is_valid_oid(oid: str) -> bool:
    """True when `oid` is 32 lowercase hex digits, optionally followed by `.dir`."""
    return bool(_OID_RE.match(oid))


def oid_to_relpath(oid: str) -> str:
    """Return the POSIX path of `oid` relative to a store root."""
    return f"{oid[:2]}/{oid[2:]}"


def relpath_to_oid(relpath: str) -> Oid | None:
    """Return the oid stored at `relpath`, or None for a path that is not an object."""
    head, sep, tail = relpath.rpartition("/")
    fanout = head.rpartition("/")[2]
    if not sep or len(fanout) != 2:
        return None
    oid = fanout + tail
    return Oid(oid) if is_valid_oid(oid) else None


# --- the control directory ------------------------------------------------------------------


def tmp_dir(control_dir: Path) -> Path:
    """`.pipe/tmp`: the project lock, the hash memo, marks, logs and scratch files (never committed)."""
    return control_dir / TMP_DIR


def lock_path(control_dir: Path) -> Path:
    """The project lock file (`core.mutex`)."""
    return control_dir / TMP_DIR / "lock"


def config_lock_path(control_dir: Path) -> Path:
    """The lock held while the project or local config file is edited."""
    return control_dir / TMP_DIR / "config.lock"


def memo_path(control_dir: Path) -> Path:
    """The hash memo database."""
    return control_dir / TMP_DIR / "memo.sqlite"


def valid_texts_path(tmp: Path) -> Path:
    """In `.pipe/tmp` (`tmp`): the digests of texts that passed their schema, one a line (see core.schema)."""
    return tmp / "valid-texts"


def logs_dir(control_dir: Path) -> Path:
    """Where each stage's output log is kept (`<stage>.log`) when stages run in parallel."""
    return control_dir / TMP_DIR / "logs"


def packs_work_dir(control_dir: Path) -> Path:
    """Where packs are built before upload and downloaded before they are cut up (temp names only)."""
    return control_dir / TMP_DIR / "packs"


def pack_index_cache(control_dir: Path, remote_key: str) -> Path:
    """The pack indexes downloaded from one remote (`remote_key`: a digest of its URL), kept to save downloads."""
    return control_dir / TMP_DIR / "packs" / remote_key


def running_dir(control_dir: Path) -> Path:
    """Where each running stage command leaves its record, so a later run can stop an orphan."""
    return control_dir / TMP_DIR / "running"


# --- the cache directory --------------------------------------------------------------------


def default_cache_dir(control_dir: Path) -> Path:
    """`.pipe/cache`, the cache directory when `cache.dir` is not set."""
    return control_dir / _CACHE_DIR


def objects_dir(cache_dir: Path) -> Path:
    """The object store's root inside a cache directory."""
    return cache_dir / _OBJECTS_DIR


def runs_dir(cache_dir: Path) -> Path:
    """The run cache inside a cache directory, beside the objects."""
    return cache_dir / RUNS_DIR


def quarantine_dir(store_root: Path) -> Path:
    """Where corrupt objects of the store at `store_root` are moved (`<cache>/quarantine`)."""
    return store_root.parent / _QUARANTINE_DIR


def store_tmp_dir(store_root: Path) -> Path:
    """Temporary files inside a local store, on its filesystem so they can be renamed into place."""
    return store_root / TMP_DIR


def download_path(directory: Path, name: str) -> Path:
    """A fresh temporary path in `directory` for downloading `name` (an oid or a run key).

    A `temp_name`, so the project lock's sweep removes it after a killed fetch.
    """
    return directory / temp_name(f"-{name}.part")


def remote_tmp_dir(root: str) -> str:
    """Partial uploads under a remote's `root` (backends without an atomic single-request write)."""
    return f"{root}/{TMP_DIR}"
