"""Push at scale: objects streamed a part at a time, packs still filled across parts, manifests last;
a no-op push asks about the manifests only and lists no packs; a pushed index is kept locally.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_engine.core.hashing import hash_bytes
from pipeline_engine.core.layout import relpath_to_oid
from pipeline_engine.index import objects
from pipeline_engine.ops.transfer import push
from pipeline_engine.remote import loose, packed, remote
from tests.conftest import Cli, Workspace
from tests.packutil import index_of
from tests.s3server import S3Server, s3_bucket_fixture, s3_server_fixture  # noqa: F401 - fixtures

FILES = {f"{i:03}.txt": f"file {i}\n" * (20 + i % 7) for i in range(60)}  # 140-270 bytes each


def _uploads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The remote paths made visible, in order (packs, indexes, loose objects)."""
    seen: list[str] = []
    real = loose.Loose.put_file

    def record(self: loose.Loose, local: os.PathLike[str] | str, final: str) -> None:
        real(self, local, final)
        seen.append(final[len(self.root) + 1:])

    monkeypatch.setattr(loose.Loose, "put_file", record)
    return seen


def test_a_push_in_parts_fills_packs_across_parts_and_sends_the_manifest_after_every_index(
    workspace: Workspace, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    cli.run("remote", "modify", "store", "pack_size", "2000")  # ~10 objects a pack, 2 packs a part
    monkeypatch.setattr(packed, "PACK_JOBS", 2)
    monkeypatch.setattr(remote, "PACK_JOBS", 2)
    seen = _uploads(monkeypatch)
    (result,) = push(workspace.project())
    assert result.transferred == len(FILES) + 1 and not result.failed
    indexes = [i for i, p in enumerate(seen) if p.endswith(".idx")]
    (manifest,) = [i for i, p in enumerate(seen) if p.endswith(".dir")]
    assert len(indexes) > 4, "several parts"
    assert manifest > max(indexes), "the manifest goes up after the index of every pack holding its files"
    for i in indexes:
        assert seen.index(seen[i].replace(".idx", ".pack")) < i, "each pack before its index"
    packs = sorted((store / "packs").glob("*.pack"), key=lambda p: p.stat().st_size)
    biggest = max(len(t) for t in FILES.values())
    assert all(p.stat().st_size > 2000 - biggest for p in packs[1:]), "only one pack is not full"
    assert sorted(r.oid for p in packs for r in index_of(p).rows) == sorted(hash_bytes(t.encode()) for t in FILES.values())
    workspace.commit("data")
    clone = workspace.clone()
    cli.run("pull")
    assert all((clone.root / "data/files" / n).read_text() == t for n, t in FILES.items())


def test_a_loose_push_in_parts_sends_the_manifest_last(
    workspace: Workspace, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.track({"data/files": FILES})
    workspace.add_remote(tmp_path / "remote-store")
    cli.run("remote", "modify", "store", "pack_threshold", "0")
    monkeypatch.setattr(remote, "STREAM_LOOSE", 7)
    seen = _uploads(monkeypatch)
    (result,) = push(workspace.project())
    assert result.transferred == len(FILES) + 1
    oids = [relpath_to_oid(p) for p in seen]
    assert all(oids) and oids[-1] is not None and oids[-1].endswith(".dir") and len(set(oids)) == len(FILES) + 1


def test_a_no_op_push_asks_about_the_manifest_only_and_lists_no_packs(
    workspace: Workspace, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.track({"data/files": FILES})
    workspace.add_remote(tmp_path / "remote-store")
    cli.run("push")
    asked: list[int] = []
    real_missing = remote.Remote.missing

    def missing(self: remote.Remote, oids: object, **kwargs: object) -> set[str]:
        asked.append(len(oids))  # type: ignore[arg-type]
        return real_missing(self, oids, **kwargs)  # type: ignore[arg-type]

    listed: list[str] = []
    real_list = packed.Packs._list

    def list_packs(self: packed.Packs) -> object:
        listed.append(self.dir)
        return real_list(self)

    monkeypatch.setattr(remote.Remote, "missing", missing)
    monkeypatch.setattr(packed.Packs, "_list", list_packs)
    (result,) = push(workspace.project())
    assert result.transferred == 0 and result.present == len(FILES) + 1
    assert asked == [1], "one question: the manifest, which vouches for its files"
    assert listed == [], "no listing of packs/ and no index loaded"


def test_presence_vouched_by_a_manifest_keeps_no_set_of_its_files(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    workspace.track({"data/files": FILES})
    workspace.add_remote(tmp_path / "remote-store")
    cli.run("push")
    project = workspace.project()
    from pipeline_engine.index.remotes import open_project_remote
    from pipeline_engine.index.used import used_outs

    plan = objects.plan_objects(project.store, used_outs(project))
    present = objects.present_on_remote(open_project_remote(project), plan)
    assert all(oid in present for oid in plan.files)
    assert len(present.found) == 0, "files are present through their manifest, not copied into a set"


def test_a_pushed_index_is_kept_locally_so_the_next_command_does_not_download_it(
    workspace: Workspace, cli: Cli, tmp_path: Path
) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    cli.run("push")
    workspace.commit("data")
    (idx,) = (store / "packs").glob("*.idx")
    (cached,) = (workspace.root / ".pipe/tmp/packs").rglob(idx.name)
    assert cached.read_bytes() == idx.read_bytes()
    # Replace the remote's index by garbage of the same size and time: only a download would see it.
    st = idx.stat()
    os.chmod(idx, 0o644)
    idx.write_bytes(b"\0" * st.st_size)
    os.utime(idx, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert "in sync" in cli.run("status", "-c", "--verify").stderr


def test_status_cloud_names_an_unreadable_index(workspace: Workspace, cli: Cli, tmp_path: Path) -> None:
    workspace.track({"data/files": FILES})
    store = workspace.add_remote(tmp_path / "remote-store")
    cli.run("push")
    workspace.commit("data")
    (idx,) = (store / "packs").glob("*.idx")
    data = bytearray(idx.read_bytes())
    data[60] ^= 0x01
    os.chmod(idx, 0o644)
    idx.write_bytes(bytes(data))
    clone = workspace.clone()  # no cached copy of the index
    cli.run("fetch", exit_code=1)
    os.chdir(clone.root)
    result = cli.run("status", "-c", "--verify", "--exit-code", exit_code=1)
    assert f"packs/{idx.name}' is invalid" in result.stderr and "warning" in result.stderr
    assert f"{len(FILES)} missing everywhere" in result.stdout
    plain = cli.run("status", "-c", "--verify")  # the warning does not make status fail by itself
    assert f"packs/{idx.name}' is invalid" in plain.stderr


def test_status_cloud_against_an_unreachable_remote_is_an_error(workspace: Workspace, cli: Cli) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace.track({"data/files": {"a.txt": "a\n", "b.txt": "b\n"}, "one.txt": "one\n"})
    workspace.add_remote(f"http://127.0.0.1:{port}", name="web")
    result = cli.run("status", "-c", exit_code=1)
    assert "remote 'web'" in result.stderr and "not pushed" not in result.stdout


@pytest.mark.s3
def test_an_index_pushed_to_s3_is_read_from_the_local_cache_by_the_next_remote(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    from pipeline_engine.remote.open import open_remote

    src = tmp_path / "src"
    src.mkdir()
    items = []
    for name, text in list(FILES.items())[:5]:
        (src / name).write_text(text)
        items.append((hash_bytes(text.encode()), src / name))

    def opened() -> remote.Remote:
        return open_remote("s3", f"s3://{s3_bucket}/packs-cache", {"endpoint_url": s3_server.endpoint_url},
                           base_dir=tmp_path, work_dir=tmp_path / "work", index_cache=tmp_path / "cache")

    assert opened().put_many(items) == {}
    (cached,) = (tmp_path / "cache").glob("*.idx")
    fresh = opened()
    downloads: list[str] = []
    real = fresh.fs.cat_file

    def counting(path: str, *args: object, **kwargs: object) -> bytes:
        downloads.append(path)
        return bytes(real(path, *args, **kwargs))

    fresh.fs.cat_file = counting
    assert fresh.missing([oid for oid, _ in items]) == set()
    assert downloads == [], f"{cached.name} came from the local cache"
