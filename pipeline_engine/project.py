"""Project: the root directory plus its opened parts (config, store, memo, git). Composition only."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pipeline_engine.cache.memo import HashMemo
from pipeline_engine.cache.store import ObjectStore
from pipeline_engine.config import CONFIG_FILE, LOCAL_CONFIG_FILE, Config, load_config
from pipeline_engine.core.fsutil import atomic_write
from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import TMP_DIR, default_cache_dir, lock_path, memo_path, objects_dir, tmp_dir
from pipeline_engine.core.mutex import ProjectMutex
from pipeline_engine.core.tempsweep import sweep_temps
from pipeline_engine.errors import ConfigError, NotAProjectError, PathError, ProjectExistsError, ScmError
from pipeline_engine.scm.git import Git, find_git_root

__all__ = ["CACHE_USERS_DIR", "CONTROL_DIR", "Project", "cache_users", "is_project_root", "register_cache_user",
           "require_own_control_dir"]

CONTROL_DIR = ".pipe"
#: One small file per project that ever opened the cache, naming its root: several projects may share
#: one `cache.dir`, and gc must not delete what the others use.
CACHE_USERS_DIR = "projects"
_IGNORED_IN_CONTROL_DIR = ("/cache/", f"/{TMP_DIR}/", f"/{LOCAL_CONFIG_FILE}")


class Project:
    """A pipe project rooted at `root` (the directory holding `.pipe/`)."""

    def __init__(self, root: Path) -> None:
        """Open the project at `root`.

        Raises:
            PathError: `.pipe` is a symlink (`require_own_control_dir`).
            ConfigError: a config file is invalid.
        """
        require_own_control_dir(root)
        self.root = root
        self.control_dir = root / CONTROL_DIR
        self.config: Config = load_config(self.control_dir)
        self._store: ObjectStore | None = None
        self._memo: HashMemo | None = None
        self._git: Git | None = None
        self._git_root = find_git_root(root)

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        """The project containing `start` (default: cwd), searching upwards like git.

        Raises:
            NotAProjectError: no `.pipe/` directory above `start`.
        """
        here = (start or Path.cwd()).resolve()
        for d in (here, *here.parents):
            if is_project_root(d):
                return cls(d)
        raise NotAProjectError(
            f"'{here}' is not inside a pipe project (no {CONTROL_DIR}/ found)", hint="run 'pipe init' first"
        )

    @classmethod
    def init(cls, root: Path, *, scm: bool = True, force: bool = False) -> Project:
        """Create `.pipe/` in `root` and return the project.

        Raises:
            ProjectExistsError: `.pipe/` exists and `force` is false.
            ScmError: `scm` is true and `root` is not inside a git repository.
        """
        root = root.resolve()
        control = root / CONTROL_DIR
        require_own_control_dir(root)
        if control.exists() and not force:
            raise ProjectExistsError(
                f"'{root}' is already a pipe project", hint="use 'pipe init -f' to reinitialise it"
            )
        if scm and find_git_root(root) is None:
            raise ScmError(
                f"'{root}' is not inside a git repository",
                hint="run 'git init' first, or 'pipe init --no-scm' to use pipe without git",
            )
        for sub in (objects_dir(default_cache_dir(control)), tmp_dir(control)):
            sub.mkdir(parents=True, exist_ok=True)
        config = control / CONFIG_FILE
        if not config.exists() or force:
            scm_line = "" if scm else "core:\n  no_scm: true\n"
            atomic_write(config, f"schema: 1\n{scm_line}")
        atomic_write(control / ".gitignore", "\n".join(_IGNORED_IN_CONTROL_DIR) + "\n")
        return cls(root)

    @property
    def cache_dir(self) -> Path:
        """The cache directory (`cache.dir`, default `.pipe/cache`); it holds `objects/` and `projects/`."""
        configured = self.config.cache_dir
        base = Path(os.path.expanduser(configured)) if configured else default_cache_dir(self.control_dir)
        base = base if base.is_absolute() else self.control_dir / base
        # `cache.dir` may come from a cloned config: a cache inside a git directory would have pipe
        # write (and gc delete) files there.
        real = Path(os.path.realpath(base))
        if any(part.lower() == ".git" for part in real.parts):
            raise ConfigError(
                f"cache.dir '{configured}' is inside a git directory ('{real}')",
                hint="set 'cache.dir' in .pipe/config.local.yaml to a directory of its own",
            )
        return base

    @property
    def store(self) -> ObjectStore:
        """The local object store; opening a `cache.dir` registers this project as one of its users."""
        if self._store is None:
            base = self.cache_dir
            self._store = ObjectStore(objects_dir(base))
            if self.config.cache_dir:  # the default .pipe/cache is known to belong to this project
                register_cache_user(base, self.root)
        return self._store

    @property
    def memo(self) -> HashMemo:
        """The hash memo database."""
        if self._memo is None:
            self._memo = HashMemo(memo_path(self.control_dir))
        return self._memo

    @property
    def git(self) -> Git | None:
        """The git working tree the project lives in, or None for a `--no-scm` project."""
        if self._git is None and self._git_root is not None and not self.config.no_scm:
            self._git = Git(self._git_root)
        return self._git

    def relpath_from_git(self, relpath: str) -> str:
        """A project-relative path made relative to the git root (they differ in a monorepo)."""
        if self._git_root is None or self._git_root == self.root:
            return relpath
        prefix = self.root.relative_to(self._git_root).as_posix()
        return f"{prefix}/{relpath}" if relpath else prefix

    def mutex(self, command: str, *, wait: bool = False, sweep: bool = False) -> ProjectMutex:
        """The lock that lets one pipe process at a time change this project.

        Taking it removes the temporary files of killed pipe processes when its previous holder
        did not exit cleanly, and always with `sweep` (gc).
        """
        tmp_dir(self.control_dir).mkdir(parents=True, exist_ok=True)

        def on_take(unclean: bool) -> None:
            if unclean or sweep:
                sweep_temps(self.root, self.store.root.parent)

        return ProjectMutex(lock_path(self.control_dir), command=command, wait=wait, on_take=on_take)

    def close(self) -> None:
        """Release open databases."""
        if self._memo is not None:
            self._memo.close()


def is_project_root(path: Path) -> bool:
    """True when `path` holds `.pipe/config.yaml` (a FIFO or device there too: reading it refuses
    it by name, where "not a project" would mislead)."""
    config = path / CONTROL_DIR / CONFIG_FILE
    return config.is_file() or (config.exists() and not config.is_dir())


def require_own_control_dir(root: Path) -> None:
    """Refuse a `.pipe` that is a symlink: a cloned repository can commit one, naming another
    project's control directory, whose cache gc would then empty and whose config, lock and memo
    every command would use. (DVC refuses a linked `.dvc` too: its config is outside the repository.)

    Raises:
        PathError: naming the link and its target.
    """
    control = root / CONTROL_DIR
    if os.path.islink(control):
        raise PathError(
            f"'{CONTROL_DIR}' in '{root}' is a symlink (to '{os.readlink(control)}'); pipe never uses a "
            "control directory through a link: it could be another project's, cache and config included",
            hint=f"replace the link by a directory of its own: 'rm {CONTROL_DIR} && pipe init'",
        )


def register_cache_user(cache_dir: Path, root: Path) -> None:
    """Record, once, that the project at `root` uses `cache_dir` (one file per project, written atomically).

    A cache that cannot be written is left alone: the command that needs to write it will say so.
    """
    entry = cache_dir / CACHE_USERS_DIR / hash_bytes(os.fsencode(root))
    if entry.exists():
        return
    with contextlib.suppress(OSError):
        entry.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(entry, f"{root}\n")


def cache_users(cache_dir: Path) -> list[Path]:
    """The roots of every project registered in `cache_dir`, sorted (they may no longer exist).

    A project's own `.pipe/cache` counts that project, which registers nothing in it.
    """
    roots: set[Path] = set()
    # Through links too: a `.pipe/cache` (or its `objects`) that is a symlink (a cloned repository
    # may commit one) to another project's makes that project a user.
    for base in (cache_dir, Path(os.path.realpath(objects_dir(cache_dir))).parent):
        if base.parent.name == CONTROL_DIR and base == default_cache_dir(base.parent):
            roots.add(base.parent.parent)
    try:
        with os.scandir(cache_dir / CACHE_USERS_DIR) as it:
            entries = list(it)
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = Path(entry.path).read_text(encoding="utf-8").strip()
            if text and Path(text).is_absolute():
                roots.add(Path(text))
    return sorted(roots)
