"""pipeline_engine.api on a tracked directory: an error naming it (dvc.api raises IsADirectoryError), never
pipe's internal manifest returned as if it were the user's content."""

from __future__ import annotations

import shutil

import pytest

from pipeline_engine import api
from pipeline_engine.errors import PathError
from tests.conftest import Workspace


@pytest.mark.parametrize("rev", [None, "HEAD"])
def test_reading_a_tracked_directory_is_an_error_naming_it(workspace: Workspace, rev: str | None) -> None:
    workspace.track({"data/images": {"1.txt": "one\n", "2.txt": "two\n"}})
    workspace.commit("images")
    shutil.rmtree(workspace.root / "data" / "images")  # the workspace falls back to the pointer, as a revision

    with pytest.raises(PathError, match="data/images.*is a directory") as info:
        api.read("data/images", rev=rev)
    assert info.value.hint == "pass the path of a file inside it"
    assert api.read("data/images/2.txt", rev=rev) == "two\n"  # a file inside it is read
