"""pipe doctor: versions, backends, platform, cache, working link types and remotes, for bug reports."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click

from pipeline_engine.cli import render

if TYPE_CHECKING:
    from pipeline_engine.ops.doctor import DoctorReport


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
def doctor(as_json: bool) -> None:
    """Show what a bug report needs: versions, backends, cache, link types, remotes (secrets masked)."""
    from pipeline_engine.ops.doctor import doctor as inspect

    report = inspect()
    if as_json:
        render.print_json(_as_dict(report))
        return
    for line in _lines(report):
        render.out.print(line, markup=False)


def _as_dict(report: DoctorReport) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    if data["project"] is not None:
        for remote in data["project"]["remotes"]:
            remote["options"] = dict(remote["options"])
    return data


def _lines(report: DoctorReport) -> list[str]:
    def version(v: str | None) -> str:
        return v or "not installed"

    lines = [
        f"pipe:        {report.pipe_version}",
        f"python:      {report.python} ({report.python_executable})",
        f"platform:    {report.platform}",
        f"git:         {version(report.git)}",
        "dependencies:",
        *(f"  {p.name:<12} {version(p.version)}" for p in report.dependencies),
        "remote backends:",
        *(
            f"  {'/'.join(b.protocols):<28} {b.package.name} {version(b.package.version)}"
            + (f" (pip install {_install(b.package.name, b.extra)})" if b.package.version is None else "")
            for b in report.backends
        ),
    ]
    p = report.project
    if p is None:
        lines.append("project:     none (not inside a pipe project)")
    else:
        fs = f" ({p.cache_filesystem})" if p.cache_filesystem else ""
        lines += [
            f"project:     {p.root}" + (f" ({p.workspace_filesystem})" if p.workspace_filesystem else ""),
            f"cache:       {p.cache_dir}{fs}",
            f"cache.type:  {','.join(p.cache_types)}",
            "link types (cache -> workspace):",
            *(f"  {c.link_type:<9} {'works' if c.works else 'fails: ' + c.detail}" for c in p.link_checks),
            "remotes:" if p.remotes else "remotes:     none",
            *(
                f"  {r.name}  {r.url}" + ("  (default)" if r.is_default else "")
                + "".join(f"  {k}={v}" for k, v in r.options)
                for r in p.remotes
            ),
        ]
    lines += [f"problem:     {problem}" for problem in report.problems]
    return lines


def _install(package: str, extra: str | None) -> str:
    return f"'pipeline-engine[{extra}]'" if extra else package
