"""The `pipe` command group: lazy subcommands, global flags, and the two error translations.

Commands are imported only when invoked, so `pipe --help` pays for click alone
(DESIGN.md §6). A `PipeError` becomes a click exception with the same exit code in
`PipeGroup.invoke`; any other exception is a bug, reported by `main()` with exit code 70.
"""

from __future__ import annotations

import difflib
import errno
import gc
import importlib
import os
import sys
from collections.abc import Iterable
from typing import Any

import click

from pipeline_engine.errors import LockedError, PipeError, PipeInterrupted

__all__ = ["SuggestingGroup", "TargetsCommand", "cli", "main", "os_error"]

# command name -> "module:attribute" under pipeline_engine.cli
COMMANDS: dict[str, str] = {
    "init": "data:init",
    "add": "data:add",
    "status": "status:status",
    "checkout": "data:checkout",
    "remove": "data:remove",
    "move": "data:move",
    "gc": "data:gc",
    "cache": "data:cache",
    "repro": "repro:repro",
    "why": "repro:why",
    "dag": "repro:dag",
    "doctor": "doctor:doctor",
    "commit": "repro:commit",
    "freeze": "repro:freeze",
    "unfreeze": "repro:unfreeze",
    "stage": "stage:stage",
    "remote": "remote:remote",
    "config": "config:config",
    "push": "transfer:push",
    "pull": "transfer:pull",
    "fetch": "transfer:fetch",
    "diff": "history:diff",
    "install": "install:install",
    "plots": "plots:plots",
    "metrics": "show:metrics",
    "params": "show:params",
    "exp": "exp:exp",
    "queue": "exp:queue",
    "ls": "external:ls",
    "get": "external:get",
    "import": "external:import_",
    "update": "external:update",
    "artifacts": "artifacts:artifacts",
    "import-dvc": "migrate:import_dvc",
}

EXIT_BUG = 70


class PipeClickError(click.ClickException):
    """A PipeError on its way out through click: same exit code, rendered to stderr."""

    def __init__(self, error: PipeError, *, verbose: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.exit_code = error.exit_code  # type: ignore[misc]  # click reads it per instance
        self.verbose = verbose

    def show(self, file: Any = None) -> None:
        """Print `error: ...` and the hint; the cause's traceback only with -v."""
        from pipeline_engine.cli import render

        render.error(self.error, verbose=self.verbose)


class TargetsCommand(click.Command):
    """`--targets a b` takes every argument up to the next option, as DVC's argparse (`nargs="*"`) does."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        spread: list[str] = []
        greedy = False
        for arg in args:
            if arg == "--targets":
                greedy = True
            elif arg.startswith("-"):
                greedy = False
                spread.append(arg)
            else:
                spread.extend(["--targets", arg] if greedy else [arg])
        return super().parse_args(ctx, spread)


class SuggestingGroup(click.Group):
    """A command group whose unknown subcommand gets a did-you-mean (`pipe remote ad`)."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            ctx.fail(f"no such command '{name}'.{did_you_mean(name, self.list_commands(ctx))}")
        return super().resolve_command(ctx, args)


class PipeGroup(click.Group):
    """Lists commands without importing them; turns PipeError into a click exit."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(f"pipeline_engine.cli.{module_name}")
        command: click.Command = getattr(module, attr)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, self._hoist_global_flags(ctx, args))
        except KeyboardInterrupt as exc:  # Ctrl-C while the command's module loads
            raise _interrupted(exc) from None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            ctx.fail(f"no such command '{name}'.{did_you_mean(name, COMMANDS)}")
        return super().resolve_command(ctx, args)

    def _fit_hint(self, ctx: click.Context, exc: PipeError) -> None:
        """Lower layers suggest "rerun with '--wait'" / "'--force'" without knowing the command: keep
        that only for a command that has the flag, else name what works there."""
        if exc.hint and ("'pipe pull" in exc.hint or "'pipe fetch" in exc.hint) and not _has_remote():
            exc.hint += "; first add a remote: 'pipe remote add -d NAME URL'"
        if not exc.hint or "rerun with '--" not in exc.hint:
            return
        name = ctx.invoked_subcommand
        command = self.get_command(ctx, name) if name in COMMANDS else None
        flags = _declared_flags(command) if command is not None else set()
        if isinstance(exc, LockedError) and "--wait" not in flags:
            exc.hint = "wait for it to finish, then run the command again"
        elif "rerun with '--force'" in exc.hint and "--force" not in flags:
            exc.hint = "run 'pipe checkout --force' on that path to replace it, then run the command again"

    def _hoist_global_flags(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Move -q/-v given after the subcommand (`pipe repro -q`) in front of it.

        A flag the subcommand (or one of its own subcommands) declares keeps its own meaning
        there (`pipe status -v` names changed files); nothing after `--`, or after the first
        argument of a command that takes the rest verbatim (`pipe stage add ... cmd -v`), moves.
        """
        at = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
        if at is None or args[at] not in COMMANDS:
            return args
        command = self.get_command(ctx, args[at])
        assert command is not None
        own = _declared_flags(command)
        moved: list[str] = []
        rest: list[str] = []
        frozen = False
        for token in args[at + 1 :]:
            if token == "--" or (not token.startswith("-") and _takes_rest_verbatim(command, rest)):
                frozen = True
            if not frozen and token in _GLOBAL_FLAGS and token not in own:
                moved.append(token)
            else:
                rest.append(token)
        return [*args[:at], *moved, args[at], *rest]

    def invoke(self, ctx: click.Context) -> Any:
        if _collect_after_load[0]:  # see main()
            _collect_after_load[0] = False
            gc.freeze()
            gc.enable()
        try:
            return super().invoke(ctx)
        except PipeError as exc:
            self._fit_hint(ctx, exc)
            verbose = bool(ctx.obj and ctx.obj.get("verbose"))
            raise PipeClickError(exc, verbose=verbose) from exc
        except OSError as exc:
            error = os_error(exc)
            if error is None:
                raise  # no path and no known cause: a bug, reported by main()
            raise PipeClickError(error, verbose=bool(ctx.obj and ctx.obj.get("verbose"))) from exc
        except KeyboardInterrupt as exc:
            raise _interrupted(exc) from None
        except click.Abort as exc:
            # click turns Ctrl-C at a prompt into Abort (exit 1): it is an interrupt like any other.
            if isinstance(exc.__context__, KeyboardInterrupt):
                click.echo(err=True)  # end the prompt's line
                raise _interrupted(exc.__context__) from None
            raise


def _interrupted(exc: KeyboardInterrupt) -> PipeClickError:
    """Ctrl-C, SIGTERM and SIGHUP alike: `finally` blocks have run (no lock held, no temp file kept);
    exit 128 + the signal number (130, 143, 129)."""
    from pipeline_engine.core import signals

    error = PipeInterrupted("interrupted; work that had finished was kept", hint="run the command again to finish it")
    error.exit_code = signals.exit_code(exc)
    return PipeClickError(error, verbose=False)


def _has_remote() -> bool:
    """True when the project has a remote to pull from (or when that cannot be told: no advice then)."""
    from pipeline_engine.project import Project

    try:
        return bool(Project.find().config.remotes)
    except PipeError:
        return True


_GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose"})


def _declared_flags(command: click.Command) -> set[str]:
    """Every option string `command` and its subcommands declare."""
    flags = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            flags |= _declared_flags(sub)
    return flags


def _takes_rest_verbatim(command: click.Command, before: list[str]) -> bool:
    """True for a command whose first argument starts a verbatim tail (`stage add NAME... cmd args`)."""
    if isinstance(command, click.Group):
        sub = command.commands.get(next((t for t in before if not t.startswith("-")), ""))
        return sub is not None and _takes_rest_verbatim(sub, [])
    return not command.context_settings.get("allow_interspersed_args", command.allow_interspersed_args)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """` Did you mean 'x'?` for the closest of `choices` to a mistyped `name`, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


# Causes the user can act on, with the next step; any other OSError counts only when it names a path.
_OS_CAUSES: dict[int, tuple[str, str | None]] = {
    errno.ENOSPC: ("no space left on device", "free some space ('pipe gc' removes unused cache objects) and rerun"),
    errno.EDQUOT: ("disk quota exceeded", "free some space ('pipe gc' removes unused cache objects) and rerun"),
    errno.EACCES: ("permission denied", "check the permissions of that path and of its directory"),
    errno.EPERM: ("operation not permitted", "check the permissions (and immutable flags) of that path"),
    errno.EROFS: ("read-only file system", "use a writable location, or remount it read-write"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter name or a shallower directory"),
    errno.EMFILE: ("too many open files", "raise the limit ('ulimit -n') or pass fewer '--jobs'"),
    errno.ENFILE: ("too many open files in the system", "close other programs or pass fewer '--jobs'"),
}


def os_error(exc: OSError) -> PipeError | None:
    """An OSError as a one-line PipeError naming the path and the cause; None when it is neither known nor named.

    A pipe temporary file is named by its directory: the file itself was removed on the way out.
    """
    known = _OS_CAUSES.get(exc.errno or 0)
    if known is None and exc.filename is None:
        return None
    cause, hint = known or ((exc.strerror or type(exc).__name__).lower(), None)
    if exc.filename is None:
        return PipeError(f"{cause} (the operating system did not say which file)", hint=hint)
    # A rename names its temporary source first: the destination is the path the user knows.
    target = exc.filename2 if exc.filename2 is not None else exc.filename
    shown = _shown(target)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) and os.path.isabs(shown):
        hint = "free some space on the device holding it and rerun"  # not this project: 'pipe gc' won't help
    return PipeError(f"'{shown}': {cause}", hint=hint)


def _shown(filename: Any) -> str:
    path = os.fsdecode(filename) if isinstance(filename, (str, bytes, os.PathLike)) else str(filename)
    name = os.path.basename(path)
    if name.startswith(".pipetmp-") or name.endswith((".part", ".tmp")):
        path = os.path.dirname(path) or "."
    from pipeline_engine.core.fsutil import shown_path  # only when an error is shown

    return shown_path(path)


@click.group(cls=PipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and requested data.")
@click.option("-v", "--verbose", is_flag=True, help="Print details, and tracebacks for errors.")
@click.version_option(package_name="pipeline-engine", prog_name="pipe")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """pipe: declarative pipelines and data versioning with a content-addressed cache."""
    ctx.obj = {"quiet": quiet, "verbose": verbose}
    from pipeline_engine.cli import render

    render.configure(quiet=quiet, verbose=verbose)


# Set by main(): the cyclic garbage collector is off while the command's modules load, then the
# objects they made are frozen (gc.freeze) and it is turned back on (PipeGroup.invoke).
_collect_after_load = [False]


def main() -> None:
    """Console-script entry point: run the group; an unexpected exception is a bug (exit 70).

    The garbage collector is paused while the command's modules load and then told to leave what
    they made alone (`gc.freeze`): those objects live until exit anyway, and collecting them again
    and again cost a 10,000-file checkout ~20 ms, a tenth of its work. Cycles made by the command
    itself are still collected.
    """
    gc.disable()
    _collect_after_load[0] = True
    from pipeline_engine.core import signals

    signals.install()  # SIGTERM and SIGHUP are handled like Ctrl-C
    try:
        cli.main(prog_name="pipe")
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a report
        interrupt = _interrupt_within(exc)
        if interrupt is not None:  # Ctrl-C while Python built a class: 3.11 wraps it in a RuntimeError
            error = _interrupted(interrupt)
            error.show()
            sys.exit(error.exit_code)
        import traceback

        from pipeline_engine.core.redact import mask_text

        print(mask_text(traceback.format_exc()), file=sys.stderr, end="")
        print(
            "pipe: internal error; this is a bug, please report it with the traceback above",
            file=sys.stderr,
        )
        sys.exit(EXIT_BUG)


def _interrupt_within(exc: BaseException) -> KeyboardInterrupt | None:
    """The interrupt an exception was raised from or during, if any (a stop signal that landed
    while Python ran an import or a class body reaches us wrapped, not as itself)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None
