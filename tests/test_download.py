"""Downloader behaviour against a local misbehaving HTTP server (no internet needed)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
from pathlib import Path

import pytest
from http_fixture import FixtureServer, closed_port_url

from iga.cli import main
from iga.data import REGISTRY, DownloadError, fetch, resolve, sha256_file

BODY = os.urandom(200_000)
SHA = hashlib.sha256(BODY).hexdigest()
FAST = dict(retries=2, backoff=0.01, timeout=5, progress=False)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Fail loudly if anything tries to reach a host other than 127.0.0.1."""
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


@pytest.fixture
def server():
    with FixtureServer() as s:
        yield s


def _part(dest: Path) -> Path:
    return dest.with_suffix(dest.suffix + ".part")


def test_good_file_lands_and_verifies(server, tmp_path):
    url = server.add("/good.bin", BODY)
    dest = tmp_path / "sub" / "good.bin"
    assert fetch([url], dest, SHA, size=len(BODY), **FAST) == dest
    assert dest.read_bytes() == BODY
    assert not _part(dest).exists()


def test_wrong_hash_raises_names_everything_and_leaves_nothing(server, tmp_path):
    url = server.add("/bad.bin", BODY)
    dest = tmp_path / "bad.bin"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as ei:
        fetch([url], dest, wrong, **FAST)
    msg = str(ei.value)
    assert "bad.bin" in msg and wrong in msg and SHA in msg and url in msg
    assert not dest.exists() and not _part(dest).exists()
    assert len(server.hits("/bad.bin")) == 1  # a wrong checksum is not retried


def test_truncated_body_is_retried_then_fails(server, tmp_path):
    url = server.add("/trunc.bin", BODY, mode="truncate", ranges=False)
    dest = tmp_path / "trunc.bin"
    with pytest.raises(DownloadError) as ei:
        fetch([url], dest, SHA, **FAST)
    assert len(server.hits("/trunc.bin")) == 3  # 1 try + 2 retries
    assert url in str(ei.value) and "truncated" in str(ei.value)
    assert not dest.exists()


def test_truncated_then_resumed_with_range(server, tmp_path):
    url = server.add("/flaky.bin", BODY, mode="truncate", truncate_times=1)
    dest = tmp_path / "flaky.bin"
    fetch([url], dest, SHA, **FAST)
    assert dest.read_bytes() == BODY
    first, second = server.hits("/flaky.bin")
    assert first.range is None and second.range == f"bytes={first.bytes_sent}-"
    assert first.bytes_sent + second.bytes_sent == len(BODY)


def test_partial_part_is_resumed_with_range(server, tmp_path):
    url = server.add("/resume.bin", BODY)
    dest = tmp_path / "resume.bin"
    half = len(BODY) // 2
    _part(dest).write_bytes(BODY[:half])
    fetch([url], dest, SHA, **FAST)
    assert dest.read_bytes() == BODY
    (req,) = server.hits("/resume.bin")
    assert req.range == f"bytes={half}-" and req.bytes_sent == len(BODY) - half


def test_mirror_miss_keeps_resumable_part(server, tmp_path):
    url = server.add("/resume.bin", BODY)
    dest = tmp_path / "resume.bin"
    _part(dest).write_bytes(BODY[:1000])
    (tmp_path / "empty_mirror").mkdir()
    fetch([url], dest, SHA, mirror=tmp_path / "empty_mirror", **FAST)
    assert dest.read_bytes() == BODY
    assert [r.range for r in server.hits("/resume.bin")] == ["bytes=1000-"]


def test_server_ignoring_range_restarts(server, tmp_path):
    url = server.add("/norange.bin", BODY, ranges=False)
    dest = tmp_path / "norange.bin"
    _part(dest).write_bytes(b"x" * 1000)  # junk, must be overwritten not appended to
    fetch([url], dest, SHA, **FAST)
    assert dest.read_bytes() == BODY
    (req,) = server.hits("/norange.bin")
    assert req.range == "bytes=1000-" and req.bytes_sent == len(BODY)


def test_stale_part_glued_to_new_bytes_restarts_from_zero(server, tmp_path):
    url = server.add("/stale.bin", BODY)
    dest = tmp_path / "stale.bin"
    _part(dest).write_bytes(b"y" * 5000)  # wrong bytes that Range would keep
    fetch([url], dest, SHA, **FAST)
    assert dest.read_bytes() == BODY
    assert [r.range for r in server.hits("/stale.bin")] == ["bytes=5000-", None]


def test_404_falls_through_to_next_url_without_retrying(server, tmp_path):
    missing = server.add("/missing.bin", mode="404")
    good = server.add("/good.bin", BODY)
    dest = tmp_path / "f.bin"
    fetch([missing, good], dest, SHA, **FAST)
    assert dest.read_bytes() == BODY
    assert len(server.hits("/missing.bin")) == 1


def test_connection_refused_retried_then_next_url(server, tmp_path, caplog):
    refused = closed_port_url()
    good = server.add("/good.bin", BODY)
    dest = tmp_path / "f.bin"
    with caplog.at_level(logging.WARNING, logger="iga.data.download"):
        fetch([refused, good], dest, SHA, **FAST)
    assert dest.read_bytes() == BODY
    assert sum("retry" in r.getMessage() for r in caplog.records) == 2


def test_error_names_every_url_with_its_own_reason(server, tmp_path):
    missing = server.add("/missing.bin", mode="404")
    refused = closed_port_url()
    with pytest.raises(DownloadError) as ei:
        fetch([missing, refused], tmp_path / "f.bin", SHA, **FAST)
    lines = str(ei.value).splitlines()
    assert any(missing in ln and "404" in ln for ln in lines)
    assert any(refused in ln and "refused" in ln for ln in lines)
    assert "last error" not in str(ei.value)
    assert [a[0] for a in ei.value.attempts] == [missing, refused]


def test_timeout_is_retried(server, tmp_path):
    url = server.add("/slow.bin", BODY, mode="stall", stall_s=1.0)
    with pytest.raises(DownloadError, match="timed out"):
        fetch([url], tmp_path / "slow.bin", SHA, retries=1, backoff=0.01, timeout=0.2, progress=False)
    assert len(server.hits("/slow.bin")) == 2


def test_mirror_folder_is_used_first(server, tmp_path):
    url = server.add("/good.bin", BODY)
    mirror = tmp_path / "mirror"
    (mirror / "kodak").mkdir(parents=True)
    (mirror / "kodak" / "good.bin").write_bytes(BODY)
    dest = tmp_path / "out" / "good.bin"
    fetch([url], dest, SHA, mirror=mirror, mirror_paths=["kodak/good.bin", "good.bin"], **FAST)
    assert dest.read_bytes() == BODY and server.requests == []
    # the default mirror path is the destination's file name
    dest2 = tmp_path / "out2" / "good.bin"
    (mirror / "good.bin").write_bytes(BODY)
    fetch([url], dest2, SHA, mirror=f"file://{mirror}", **FAST)
    assert dest2.read_bytes() == BODY and server.requests == []


def test_mirror_paths_are_tried_in_order(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "sub" / "f.bin").write_bytes(b"from sub-path")
    (mirror / "f.bin").write_bytes(b"from basename")
    a = fetch([], tmp_path / "a" / "f.bin", None, mirror=mirror, mirror_paths=["sub/f.bin", "f.bin"], **FAST)
    b = fetch([], tmp_path / "b" / "f.bin", None, mirror=mirror, mirror_paths=["nope/f.bin", "f.bin"], **FAST)
    assert a.read_bytes() == b"from sub-path" and b.read_bytes() == b"from basename"


def test_mirror_url_prefix_is_used_first(server, tmp_path):
    server.add("/mirror/data/good.bin", BODY)
    dest = tmp_path / "good.bin"
    fetch([closed_port_url()], dest, SHA, mirror=server.url("/mirror"), mirror_paths=["data/good.bin"], **FAST)
    assert dest.read_bytes() == BODY
    assert [r.path for r in server.requests] == ["/mirror/data/good.bin"]


def test_corrupt_mirror_copy_falls_back_to_url(server, tmp_path):
    url = server.add("/good.bin", BODY)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "good.bin").write_bytes(b"corrupt")
    dest = tmp_path / "good.bin"
    fetch([url], dest, SHA, mirror=mirror, **FAST)
    assert dest.read_bytes() == BODY and len(server.hits("/good.bin")) == 1


def test_existing_verified_dest_is_not_downloaded_again(server, tmp_path):
    url = server.add("/good.bin", BODY)
    dest = tmp_path / "good.bin"
    dest.write_bytes(BODY)
    os.utime(dest, (1, 1))
    fetch([url], dest, SHA, **FAST)
    assert server.requests == [] and dest.stat().st_mtime == 1


def test_existing_wrong_dest_is_replaced(server, tmp_path):
    url = server.add("/good.bin", BODY)
    dest = tmp_path / "good.bin"
    dest.write_bytes(b"old and wrong")
    fetch([url], dest, SHA, **FAST)
    assert dest.read_bytes() == BODY


def test_sha256_prefix_torchvision_convention(server, tmp_path):
    url = server.add("/w.pth", BODY)
    good = tmp_path / f"w-{SHA[:8]}.pth"
    fetch([url], good, None, sha256_prefix=SHA[:8], **FAST)
    assert good.read_bytes() == BODY
    with pytest.raises(DownloadError, match=f"starting with 7be5be79, got {SHA}"):
        fetch([url], tmp_path / "alexnet-owt-7be5be79.pth", None, sha256_prefix="7be5be79", **FAST)


def test_announced_size_mismatch_and_html_page_rejected(server, tmp_path):
    url = server.add("/good.bin", BODY)
    page = server.add("/confirm", mode="html")
    with pytest.raises(DownloadError) as ei:
        fetch([url, page], tmp_path / "x.zip", None, size=len(BODY) + 1, **FAST)
    assert "size mismatch" in str(ei.value) and "HTML page" in str(ei.value)
    assert len(server.hits("/good.bin")) == 1 and len(server.hits("/confirm")) == 1


def test_no_source_at_all(tmp_path):
    with pytest.raises(DownloadError, match="no URL given and no mirror"):
        fetch([], tmp_path / "x", None, **FAST)


# --- registry -------------------------------------------------------------------------


def test_resolve_lists_allowed_names():
    assert resolve("kodak", "kodim03").filename == "kodim03.png"
    with pytest.raises(ValueError, match="unknown dataset 'kodac'.*kodak"):
        resolve("kodac", "kodim01")
    with pytest.raises(ValueError, match="unknown item 'kodim99'.*kodim01, kodim02"):
        resolve("kodak", "kodim99")


def test_registry_entries_are_consistent():
    for dataset, items in REGISTRY.items():
        for name, src in items.items():
            assert (src.dataset, src.item) == (dataset, name)
            if src.sha256 is not None:
                assert len(src.sha256) == 64 and int(src.sha256, 16) >= 0
            assert all(u.startswith(("http://", "https://")) for u in src.urls)
    lp = resolve("lpips", "alexnet")
    assert lp.filename == "alexnet-owt-7be5be79.pth" and lp.sha256_prefix == "7be5be79"
    assert resolve("stanford", "thai").size == 106051627
    assert resolve("stanford", "bunny").sha256 is None


def test_mirror_only_entry_explains_itself(tmp_path):
    with pytest.raises(DownloadError, match="no public URL.*mirror"):
        resolve("occupancy", "dragon").fetch(tmp_path / "dragon.mat.zip", progress=False)
    with pytest.raises(DownloadError, match="not in mirror(.|\n)*no public URL"):
        resolve("occupancy", "dragon").fetch(tmp_path / "dragon.mat.zip", mirror=tmp_path, progress=False)


def test_real_kodak_copy_verifies_against_registry(tmp_path):
    # optional: IGA_TEST_KODAK=<folder holding kodim01.png> checks a real copy
    mirror = Path(os.environ.get("IGA_TEST_KODAK", "/nonexistent"))
    if not (mirror / "kodim01.png").is_file():
        pytest.skip("set IGA_TEST_KODAK to a folder with the real kodim01.png to run this")
    src = resolve("kodak", "kodim01")
    dest = fetch([], tmp_path / "kodim01.png", src.sha256, size=src.size, mirror=mirror, progress=False)
    assert sha256_file(dest) == src.sha256
    # the dataset-level mirror layout (<mirror>/kodak/kodim01.png) works through the registry
    dest2 = dataclasses.replace(src, urls=()).fetch(
        tmp_path / "k" / "kodim01.png", mirror=mirror.parent, progress=False
    )
    assert sha256_file(dest2) == src.sha256


# --- CLI ------------------------------------------------------------------------------


def test_cli_download_bad_hash_exits_1_with_message(server, tmp_path, capsys):
    url = server.add("/good.bin", BODY)
    out = tmp_path / "good.bin"
    rc = main(["download", "--url", url, "--sha256", "f" * 64, "--out", str(out), "--retries", "0", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "iga download: error:" in err and "f" * 64 in err and SHA in err and url in err
    assert not out.exists()


def test_cli_download_good_and_bad_names(server, tmp_path, capsys):
    url = server.add("/good.bin", BODY)
    out = tmp_path / "good.bin"
    assert main(["download", "--url", url, "--sha256", SHA, "--out", str(out), "--no-progress"]) == 0
    assert out.read_bytes() == BODY
    assert main(["download", "--dataset", "kodak", "--item", "kodim99", "--out", str(tmp_path / "x.png")]) == 2
    assert "allowed: kodim01" in capsys.readouterr().err


def test_cli_fetch_lpips_weights_failure_and_success(server, tmp_path, monkeypatch):
    out = tmp_path / "w" / "alexnet-owt-7be5be79.pth"
    status = tmp_path / "w" / "alexnet.status.json"
    missing = server.add("/missing.pth", mode="404")
    assert (
        main(
            [
                "fetch-lpips-weights",
                "--out",
                str(out),
                "--status",
                str(status),
                "--url",
                missing,
                "--retries",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    st = json.loads(status.read_text())
    assert st["available"] is False and "404" in st["reason"] and not out.exists()

    # success: the fixture bytes cannot carry the real prefix, so patch the registry entry
    real = resolve("lpips", "alexnet")
    monkeypatch.setitem(REGISTRY["lpips"], "alexnet", dataclasses.replace(real, sha256_prefix=SHA[:8]))
    url = server.add("/alexnet-owt-7be5be79.pth", BODY)
    assert main(["fetch-lpips-weights", "--out", str(out), "--status", str(status), "--url", url, "--no-progress"]) == 0
    st = json.loads(status.read_text())
    assert st == {"available": True, "path": str(out.resolve()), "sha256": SHA}

    assert (
        main(["fetch-lpips-weights", "--out", str(tmp_path / "alexnet.pth"), "--status", str(status), "--url", url])
        == 2
    )
