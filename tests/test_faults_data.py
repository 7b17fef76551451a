"""Issue 15, data layer: each hostile case replayed (items 5, 6, 7, 8, 10), with the new behaviour.

Everything is offline: archives are built here, servers are tests/http_fixture.py on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import socket
import stat
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from http_fixture import FixtureServer, closed_port_url
from snakemake_runner import ROOT, run_snakemake

from iga.cli import main
from iga.data import (
    ArchiveLimitError,
    CorruptArchiveError,
    DownloadError,
    ExtractLimits,
    UnsafeArchiveError,
    fetch,
    resolve,
    safe_extract,
)

FAST = dict(retries=0, backoff=0.01, progress=False)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".extract-" in p.name or ".old-" in p.name)


def _zip_link(zf: zipfile.ZipFile, name: str, target: bytes) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16
    zf.writestr(info, target)


def _cli_error(capsys, argv: list[str], rc: int) -> str:
    assert main(argv) == rc
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --- item 5: extraction limits and link chains ---------------------------------------------


def test_item5_zip_bomb_refused_before_writing(tmp_path, capsys):
    arc = tmp_path / "bomb.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(64 << 20))  # 64 MiB of zeros -> ~64 KB (ratio ~1000)
    assert arc.stat().st_size < 1 << 20
    out = tmp_path / "out"
    with pytest.raises(ArchiveLimitError, match=r"bomb\.zip: member 'zeros\.bin'.*max_ratio"):
        safe_extract(arc, out)
    assert not out.exists() and _leftovers(tmp_path) == []
    err = _cli_error(capsys, ["extract", "--archive", str(arc), "--out", str(out)], 1)
    assert str(arc) in err and "max_ratio" in err and err.count("\n") == 1
    # the limits are configurable: a higher ratio lets this archive through
    assert main(["extract", "--archive", str(arc), "--out", str(out), "--max-ratio", "2000"]) == 0
    assert (out / "zeros.bin").stat().st_size == 64 << 20


def test_item5_tar_gz_bomb_and_every_limit(tmp_path):
    arc = tmp_path / "bomb.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 << 20
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(ArchiveLimitError, match="max_ratio"):
        safe_extract(arc, tmp_path / "out")
    small = tmp_path / "two.zip"
    with zipfile.ZipFile(small, "w") as zf:
        zf.writestr("a.txt", b"a" * 100)
        zf.writestr("b.txt", b"b" * 100)
    for limit, kw in (
        ("max_members", {"max_members": 1}),
        ("max_member_bytes", {"max_member_bytes": 99}),
        ("max_total_bytes", {"max_total_bytes": 150}),
    ):
        with pytest.raises(ArchiveLimitError, match=limit):
            safe_extract(small, tmp_path / "out", ExtractLimits(**kw))
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="max_ratio=0"):
        ExtractLimits(max_ratio=0)


def test_item5_huge_symlink_target_is_refused_without_reading_it(tmp_path, capsys):
    arc = tmp_path / "biglink.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as zf:
        _zip_link(zf, "link", b"a" * (32 << 20))  # the 512 MiB, scaled down
    with pytest.raises(ArchiveLimitError, match="max_link_bytes") as ei:
        safe_extract(arc, tmp_path / "out")
    assert len(str(ei.value)) < 300  # not the link text itself
    err = _cli_error(capsys, ["extract", "--archive", str(arc), "--out", str(tmp_path / "o")], 1)
    assert len(err) < 400 and "link" in err


def test_item5_symlink_chain_resolving_outside_is_refused(tmp_path):
    arc = tmp_path / "chain.zip"
    with zipfile.ZipFile(arc, "w") as zf:  # each link lexically inside; together: outside
        _zip_link(zf, "a", b"b/..")
        _zip_link(zf, "b", b".")
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="member 'a' links outside the target after"):
        safe_extract(arc, out)
    assert not out.exists() and _leftovers(tmp_path) == []
    tar = tmp_path / "chain.tar"
    with tarfile.open(tar, "w") as tf:
        for name, target in (("a", "b/.."), ("b", ".")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="member 'a'"):
        safe_extract(tar, out)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_item5_real_archives_extract_within_the_default_limits(tmp_path):
    """Optional: IGA_TEST_ARCHIVES=<folder> extracts every archive in it with the defaults."""
    folder = Path(os.environ.get("IGA_TEST_ARCHIVES", "/nonexistent"))
    archives = sorted(p for p in folder.glob("*") if p.name.endswith((".zip", ".gz", ".tgz")))
    if not archives:
        pytest.skip("set IGA_TEST_ARCHIVES to a folder of real archives to run this")
    for arc in archives:
        assert safe_extract(arc, tmp_path / arc.name.replace(".", "_")), arc


# --- item 6: no junk taken as a download; corrupt archives give one-line errors ------------

HTML = b"<html><body>302 Found: moved to a login page.</body></html>\n"[:57]


def test_item6_html_page_saved_as_bunny_is_never_a_finished_download(tmp_path):
    src = resolve("stanford", "bunny")
    assert src.sha256 is None and src.min_size and src.fmt == "tar.gz"
    dest = tmp_path / "bunny.tar.gz"
    dest.write_bytes(HTML)
    mirror = tmp_path / "mirror"
    (mirror / "stanford").mkdir(parents=True)
    (mirror / "stanford" / "bunny.tar.gz").write_bytes(HTML)
    with pytest.raises(DownloadError, match="size check failed for bunny.tar.gz"):
        fetch([], dest, None, min_size=src.min_size, fmt=src.fmt, mirror=mirror, mirror_paths=src.mirror_paths, **FAST)
    # the junk is not "already present and verified"; and large junk fails the format check
    (mirror / "stanford" / "bunny.tar.gz").write_bytes(HTML * 20_000)
    with pytest.raises(DownloadError, match="format check failed.*no gzip magic"):
        fetch([], dest, None, min_size=src.min_size, fmt=src.fmt, mirror=mirror, mirror_paths=src.mirror_paths, **FAST)
    # a truncated real tar.gz fails too (the whole gzip stream is checked)
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as tf:
        info = tarfile.TarInfo("bunny/reconstruction/bun_zipper.ply")
        payload = os.urandom(700_000)
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    (mirror / "stanford" / "bunny.tar.gz").write_bytes(good.read_bytes()[:-5000])
    with pytest.raises(DownloadError, match="corrupt or truncated gzip"):
        fetch([], dest, None, min_size=src.min_size, fmt=src.fmt, mirror=mirror, mirror_paths=src.mirror_paths, **FAST)
    shutil.copy(good, mirror / "stanford" / "bunny.tar.gz")
    assert src.fetch(dest, mirror=mirror, **FAST) == dest
    assert dest.read_bytes() == good.read_bytes()


def test_item6_every_stanford_scan_has_a_size_and_a_format_check():
    for item in ("bunny", "dragon", "armadillo", "lucy", "thai"):
        src = resolve("stanford", item)
        assert src.fmt in ("tar.gz", "ply.gz") and (src.size or src.min_size), src
        assert "format" in src.checks and "size" in src.checks
    assert resolve("stanford", "thai").size == 106_051_627
    assert "sha256" in resolve("kodak", "kodim01").checks


@pytest.mark.parametrize(
    "name,data",
    [
        ("bunny.tar.gz", HTML),
        ("scene.zip", HTML),
        ("Armadillo.ply.gz", HTML),
        ("trunc.tar.gz", None),
        ("trunc.zip", None),
    ],
)
def test_item6_iga_extract_of_junk_is_one_line_naming_the_archive(tmp_path, capsys, name, data):
    arc = tmp_path / name
    if data is None:  # a real archive cut short
        full = tmp_path / ("full" + name[len("trunc") :])
        if name.endswith(".zip"):
            with zipfile.ZipFile(full, "w") as zf:
                zf.writestr("a.bin", os.urandom(50_000))
        else:
            with tarfile.open(full, "w:gz") as tf:
                info = tarfile.TarInfo("a.bin")
                info.size = 50_000
                tf.addfile(info, io.BytesIO(os.urandom(info.size)))
        data = full.read_bytes()[:30_000]
    arc.write_bytes(data)
    with pytest.raises(CorruptArchiveError):
        safe_extract(arc, tmp_path / "out")
    err = _cli_error(capsys, ["extract", "--archive", str(arc), "--out", str(tmp_path / "out")], 1)
    assert err.startswith("iga extract: error: ") and str(arc) in err and err.count("\n") == 1
    assert "delete" in err  # tells the user how to get a fresh download
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


# --- item 7: deadline, minimum rate, every source's own reason -----------------------------


def test_item7_trickling_server_hits_the_deadline(tmp_path):
    with FixtureServer() as server:
        url = server.add("/slow.bin", os.urandom(100_000), mode="trickle", trickle_bytes=1024, trickle_every_s=0.1)
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="exceeded its deadline of 1 s"):
            fetch([url], tmp_path / "slow.bin", None, timeout=1.0, min_rate=0, **FAST)
        assert time.monotonic() - t0 < 5
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="too slow: .* below the minimum 100000 bytes/s"):
            fetch([url], tmp_path / "slow2.bin", None, timeout=60, min_rate=100_000, rate_window=0.5, **FAST)
        assert time.monotonic() - t0 < 5


def test_item7_cli_takes_the_deadline_and_lists_every_source_with_its_reason(tmp_path, capsys):
    body = os.urandom(10_000)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "f.bin").write_bytes(body[:-1] + b"X")  # a corrupt copy in the mirror
    refused = closed_port_url("/f.bin")
    sha = hashlib.sha256(body).hexdigest()
    err = _cli_error(
        capsys,
        [
            "download",
            "--url",
            refused,
            "--sha256",
            sha,
            "--out",
            str(tmp_path / "f.bin"),
            "--mirror",
            str(mirror),
            "--retries",
            "0",
            "--timeout",
            "5",
            "--min-rate",
            "0",
            "--no-progress",
        ],
        1,
    )
    lines = err.splitlines()
    assert any(str(mirror / "f.bin") in ln and "checksum mismatch" in ln for ln in lines)
    assert any(refused in ln and "refused" in ln for ln in lines)
    assert "last error" not in err
    assert (
        _cli_error(capsys, ["download", "--url", refused, "--out", str(tmp_path / "g"), "--timeout", "0"], 2).count(
            "timeout=0"
        )
        == 1
    )


# --- item 8: config values are shell-quoted; a mirror with a space works end to end -------


def test_item8_mirror_with_space_and_shell_characters_through_the_workflow(tmp_path):
    mirror = tmp_path / "my mirror $(touch INJECTED);x"
    (mirror / "stanford").mkdir(parents=True)
    arc = mirror / "stanford" / "bunny.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        info = tarfile.TarInfo("bunny/reconstruction/bun_zipper.ply")
        payload = b"ply\nformat ascii 1.0\n" + os.urandom(600_000)
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "config.yaml", work / "config.yaml")
    overlay = {
        "data": {
            "root": "data",
            "mirror": str(mirror),
            "retries": 0,
            "timeout_s": 30,
            "extract_limits": {"max_members": 10},
        },
        "tasks": {"occupancy": {"enabled": True, "dataset": "stanford"}},
    }
    (work / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    target = "data/stanford/bunny/extracted"
    res = run_snakemake(work, target, "--configfile", "overlay.yaml", "-p")
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert (work / "data/stanford/bunny/bunny.tar.gz").read_bytes() == arc.read_bytes()
    assert (work / target / "bunny/reconstruction/bun_zipper.ply").is_file()
    assert "--timeout 30" in res.stdout + res.stderr and "--max-members 10" in res.stdout + res.stderr
    assert not list(tmp_path.rglob("INJECTED")) and not list(work.rglob("INJECTED"))


def test_item8_data_root_with_shell_characters_is_rejected_by_the_schema(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "o.yaml").write_text(yaml.safe_dump({"data": {"root": "my data;rm -rf x"}}))
    res = run_snakemake(tmp_path, "-n", "--configfile", "o.yaml")
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "my data;rm -rf x" in out and "should match pattern" in out, out[-2000:]


# --- item 10: extracted folders get the usual permissions ---------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "gz"])
def test_item10_extracted_folders_are_0755_under_umask_022(tmp_path, kind):
    arc = tmp_path / f"a.{kind}" if kind != "gz" else tmp_path / "Armadillo.ply.gz"
    if kind == "zip":
        with zipfile.ZipFile(arc, "w") as zf:
            zf.writestr("d/x.txt", b"x")
    elif kind == "tar.gz":
        with tarfile.open(arc, "w:gz") as tf:
            info = tarfile.TarInfo("d/x.txt")
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    else:
        arc.write_bytes(gzip.compress(b"ply\n"))
    old = os.umask(0o022)
    try:
        safe_extract(arc, tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    for d in (tmp_path / "out").rglob("*"):
        if d.is_dir():
            assert stat.S_IMODE(d.stat().st_mode) == 0o755, d
