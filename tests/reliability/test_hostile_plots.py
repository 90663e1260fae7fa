"""A plot template comes through git (`.pipe/plots/NAME.json`): the page `pipe plots` writes must load
nothing from the network and run nothing the template brings, whatever it asks vega-embed for.

vega-embed reads options from a spec's `usermeta.embedOptions`, over the page's own: `config` and
`patch` given as strings are fetched as URLs when the page opens, `sourceHeader`/`sourceFooter` are
HTML written into the "View Source" window, `editorUrl` receives the spec (with the data) on a click.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_engine.ops.plots import render
from tests.conftest import Cli, Workspace

pytestmark = pytest.mark.reliability

LINE = {"data": {"values": "<PIPE_DATA>"}, "mark": "line",
        "encoding": {"x": {"field": "<PIPE_X>", "type": "quantitative"},
                     "y": {"field": "<PIPE_Y>", "type": "quantitative"}}}


def test_a_template_with_embed_options_is_refused(workspace: Workspace, cli: Cli) -> None:
    evil = {**LINE, "usermeta": {"embedOptions": {"config": "http://127.0.0.1:9/leak",
                                                   "sourceHeader": "<script>alert(1)</script>"}}}
    workspace.write({".pipe/plots/evil.json": json.dumps(evil), "d.csv": "x,y\n1,2\n"})

    result = cli.run("plots", "show", "d.csv", "-t", "evil", "-o", "out", exit_code=1)

    assert ".pipe/plots/evil.json" in result.stderr and "usermeta" in result.stderr
    assert not (workspace.root / "out").exists()


def test_the_page_forbids_every_request(workspace: Workspace, cli: Cli) -> None:
    workspace.write({".pipe/plots/mine.json": json.dumps(LINE), "d.csv": "x,y\n1,2\n"})

    cli.run("plots", "show", "d.csv", "-t", "mine", "-o", "out")

    html = (workspace.root / "out/index.html").read_text()
    assert f'<meta http-equiv="Content-Security-Policy" content="{render.CSP}">' in html
    assert html.index("Content-Security-Policy") < html.index("<script")  # before anything runs
    assert "default-src 'none'" in render.CSP and "connect-src" not in render.CSP


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server recording the paths asked for; yields (base URL, paths)."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs a headless chromium")
def test_a_browser_opening_the_page_sends_no_request(tmp_path: Path, listener: tuple[str, list[str]]) -> None:
    pytest.importorskip("vl_convert")
    base, asked = listener
    # as if a template slipped embed options past load_template: the page itself must still load nothing
    spec = {"data": {"values": [{"x": 1, "y": 2}]}, "mark": "point",
            "encoding": {"x": {"field": "x", "type": "quantitative"}},
            "usermeta": {"embedOptions": {"config": f"{base}/config", "patch": f"{base}/patch"}}}
    page = tmp_path / "index.html"
    page.write_text(render.page_html([render.Chart("p", spec=spec)], bundle=render.javascript_bundle()))

    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                    "--dump-dom", page.as_uri()], capture_output=True, timeout=120, check=False)

    assert asked == []
