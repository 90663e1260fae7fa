"""Git hooks that run pipe: the lines `pipe install` adds to a hook script, and taking them out again.

Text in, text out: `add_block` puts pipe's block into a hook's text (a new `#!/bin/sh` script when
there is none) and `remove_block` takes exactly that block out. The block sits right after the
shebang line, so an existing script's `exit`/`exec` cannot skip it, and the rest of the script
runs after it unchanged, its exit code still the hook's. The block runs in a subshell with stdin
from /dev/null (a pre-push script still reads git's ref lines), and only where the project's
`.pipe/config.yaml` exists (a branch from before `pipe init` gets no errors).

Each block is marked with the project's directory (relative to the git root), so two projects in
one repository each keep their own. `hooks_dir` is the one function here that runs git.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from pipeline_engine.errors import ScmError

__all__ = ["HOOKS", "NEW_SCRIPT", "add_block", "has_block", "hook_block", "hooks_dir", "remove_block"]

#: The hooks pipe installs, and the pipe command each runs (DVC's set).
HOOKS: dict[str, str] = {"post-checkout": "checkout", "pre-commit": "status", "pre-push": "push"}
#: The first line of a hook script pipe creates (a file holding only this and pipe's block is pipe's).
NEW_SCRIPT = "#!/bin/sh\n"
# Interpreters whose scripts can take pipe's POSIX shell lines.
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"})

# Each hook's guard before pipe runs, and what follows its exit status.
_ACTIONS = {
    # $3 is 1 for a branch checkout, 0 for `git checkout -- FILE` (DVC's rule); never in a rebase.
    "post-checkout": ('[ "$3" = 1 ] && [ ! -d "$(git rev-parse --git-path rebase-merge)" ] && ', ""),
    "pre-commit": ("", " || true"),  # shown, never blocks the commit
    "pre-push": ("", " || exit $?"),  # data not on the remote: the git push stops too
}


def _markers(project_dir: str) -> tuple[str, str]:
    return f"# >>> pipe (project: {project_dir}) >>>\n", f"# <<< pipe (project: {project_dir}) <<<\n"


def hook_block(hook: str, *, python: str, project_dir: str) -> str:
    """pipe's lines for `hook`, marked, running `python -m pipeline_engine` (`pipe` on PATH once it is gone).

    `project_dir` is the project's directory relative to the git root (`.` for the root), where
    git runs hooks.

    Raises:
        ScmError: `project_dir` holds a line break (no marker line could name it).
    """
    if "\n" in project_dir or "\r" in project_dir:
        raise ScmError(f"cannot install git hooks for a project directory with a line break: {project_dir!r}")
    guard, tail = _ACTIONS[hook]
    command = HOOKS[hook]
    begin, end = _markers(project_dir)
    py, where = shlex.quote(python), shlex.quote(project_dir)
    config = shlex.quote(f"{project_dir}/.pipe/config.yaml" if project_dir != "." else ".pipe/config.yaml")
    lines = [
        begin,
        "# Added by 'pipe install'; 'pipe install --uninstall' removes these lines.\n",
        f"# Runs 'pipe {command}' with the Python that ran 'pipe install' ({python}), not 'pipe' on PATH:\n",
        "# git GUIs, editors and shells without the virtualenv active run hooks with a PATH that may\n",
        "# lack it. Once that interpreter is gone, 'pipe' on PATH is used.\n",
        f"if {guard}[ -f {config} ]; then\n",
        "  (\n",
        "    for v in GIT_DIR GIT_INDEX_FILE; do  # git may pass them relative to the repository root\n",
        '      eval "p=\\${$v:-}"; case "$p" in ""|/*) ;; *) export "$v=$PWD/$p" ;; esac\n',
        "    done\n",
        f"    cd {where} || exit 1\n",
        f'    if [ -x {py} ]; then {py} -m pipeline_engine {command}; else pipe {command}; fi\n',
        f"  ) </dev/null{tail}\n",
        "fi\n",
        end,
    ]
    return "".join(lines)


def has_block(text: str, project_dir: str) -> bool:
    """True when `text` holds pipe's block for `project_dir`."""
    return _markers(project_dir)[0] in text.splitlines(keepends=True)


def add_block(text: str | None, block: str, *, project_dir: str, source: str) -> str:
    """`text` (a hook script, None when absent) with `block` in it: replacing that project's block, or after the shebang.

    Raises:
        ScmError: the script is not a shell script (`source` names it), so shell lines cannot go in.
    """
    if not text:
        return NEW_SCRIPT + block
    lines = text.splitlines(keepends=True)
    span = _span(lines, project_dir, source=source)
    if span is not None:
        start, stop = span
        return "".join([*lines[:start], block, *lines[stop:]])
    if lines[0].startswith("#!"):
        _check_shell(lines[0], source)
        head = lines[0] if lines[0].endswith("\n") else lines[0] + "\n"
        return "".join([head, block, *lines[1:]])
    return block + text  # no shebang: git runs it with sh


def remove_block(text: str, *, project_dir: str, source: str) -> str | None:
    """`text` without pipe's block for `project_dir`; None when nothing but what pipe created is left.

    Raises:
        ScmError: a begin marker has no end marker (the hook was edited by hand).
    """
    lines = text.splitlines(keepends=True)
    span = _span(lines, project_dir, source=source)
    if span is None:
        return text
    rest = "".join([*lines[: span[0]], *lines[span[1]:]])
    return None if rest.strip() in ("", NEW_SCRIPT.strip()) else rest


def _span(lines: list[str], project_dir: str, *, source: str) -> tuple[int, int] | None:
    begin, end = _markers(project_dir)
    if begin not in lines:
        return None
    start = lines.index(begin)
    try:
        stop = lines.index(end, start) + 1
    except ValueError:
        raise ScmError(f"{source}: pipe's block has no end line ('{end.strip()}')",
                       hint="fix or remove the pipe lines in that hook by hand, then run the command again") from None
    return start, stop


def _check_shell(shebang: str, source: str) -> None:
    words = shebang[2:].split()
    name = os.path.basename(words[0]) if words else ""
    if name == "env" and len(words) > 1:
        name = os.path.basename(next((w for w in words[1:] if not w.startswith("-")), ""))
    if name not in _SHELLS:
        raise ScmError(
            f"{source}: is a '{name or shebang.strip()}' script; pipe adds shell lines to hooks, so it left it unchanged",
            hint="call 'pipe' from that script yourself (see 'pipe install' in docs/commands.md), "
                 "or make it a shell script that runs it",
        )


def hooks_dir(git_root: Path) -> Path:
    """Where git looks for the hooks of the repository at `git_root` (`core.hooksPath` honoured).

    Raises:
        ScmError: git cannot tell (not a repository, git missing).
    """
    try:
        proc = subprocess.run(["git", "rev-parse", "--git-path", "hooks"], cwd=git_root, capture_output=True,
                              text=True, check=False, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except OSError as exc:
        raise ScmError(f"cannot run git to find the hooks directory: {exc}") from exc
    if proc.returncode != 0:
        raise ScmError(f"cannot find the git hooks directory of '{git_root}': {proc.stderr.strip()}")
    return git_root / proc.stdout.strip()  # an absolute path stays as it is
