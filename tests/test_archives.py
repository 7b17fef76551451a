"""safe_extract: good archives unpack; escaping members are refused by name, atomically."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from iga.cli import main
from iga.data import CorruptArchiveError, UnsafeArchiveError, safe_extract


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _tar(path: Path, members: list[tuple[str, object]], mode: str = "w:gz") -> Path:
    """members: (name, bytes) for files, (name, ('sym'|'hard'|'chr', target)) for others."""
    with tarfile.open(path, mode) as tf:
        for name, spec in members:
            info = tarfile.TarInfo(name)
            if isinstance(spec, bytes):
                info.size = len(spec)
                tf.addfile(info, io.BytesIO(spec))
                continue
            kind, target = spec
            info.type = {
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "dir": tarfile.DIRTYPE,
            }[kind]
            info.linkname = target
            tf.addfile(info)
    return path


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".extract-" in p.name or ".old-" in p.name)


def test_good_zip_extracts(tmp_path):
    arc = _zip(tmp_path / "good.zip", {"scene/a.txt": b"A", "scene/sub/b.txt": b"B"})
    files = safe_extract(arc, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in files] == ["scene/a.txt", "scene/sub/b.txt"]
    assert (tmp_path / "out/scene/sub/b.txt").read_bytes() == b"B"
    assert _leftovers(tmp_path) == []


def test_good_tar_gz_with_internal_links_extracts(tmp_path):
    arc = _tar(
        tmp_path / "good.tar.gz",
        [
            ("./", ("dir", "")),
            ("d/x.ply", b"ply"),
            ("d/link.ply", ("sym", "x.ply")),
            ("d/hard.ply", ("hard", "d/x.ply")),
        ],
    )
    out = tmp_path / "out"
    files = safe_extract(arc, out)
    assert {p.name for p in files} == {"x.ply", "link.ply", "hard.ply"}
    assert (out / "d/link.ply").is_symlink() and (out / "d/link.ply").read_bytes() == b"ply"
    assert (out / "d/hard.ply").read_bytes() == b"ply"


def test_plain_tar_and_tgz_names(tmp_path):
    for name, mode in (("a.tar", "w"), ("a.tgz", "w:gz")):
        arc = _tar(tmp_path / name, [("f.txt", b"hi")], mode)
        assert (safe_extract(arc, tmp_path / name.replace(".", "_")))[0].read_bytes() == b"hi"


def test_single_file_gz(tmp_path):
    arc = tmp_path / "Armadillo.ply.gz"
    arc.write_bytes(gzip.compress(b"ply\nformat ascii 1.0\n"))
    (f,) = safe_extract(arc, tmp_path / "armadillo")
    assert f == tmp_path / "armadillo" / "Armadillo.ply"
    assert f.read_bytes().startswith(b"ply")


@pytest.mark.parametrize("bad", ["../evil.txt", "ok/../../evil.txt", "/abs/evil.txt"])
def test_zip_escaping_member_rejected_by_name(tmp_path, bad):
    arc = _zip(tmp_path / "bad.zip", {"fine.txt": b"ok", bad: b"pwned"})
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=f"member '{bad}'"):
        safe_extract(arc, out)
    assert not out.exists() and _leftovers(tmp_path) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("bad", ["../evil.txt", "a/../../evil.txt", "/abs/evil.txt"])
def test_tar_gz_escaping_member_rejected_by_name(tmp_path, bad):
    arc = _tar(tmp_path / "bad.tar.gz", [("fine.txt", b"ok"), (bad, b"pwned")])
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=f"member '{bad}'"):
        safe_extract(arc, out)
    assert not out.exists() and _leftovers(tmp_path) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    "members,bad",
    [
        ([("link", ("sym", "../../outside"))], "link"),
        ([("link", ("sym", "/etc"))], "link"),
        ([("hard", ("hard", "../outside.txt"))], "hard"),
        # lexically inside, but 'a' points at the root, so a/b/l climbs out for real
        ([("a", ("sym", ".")), ("a/b", ("dir", "")), ("a/b/l", ("sym", "../../x"))], "a/b/l"),
        # a file written through that symlink: a/../evil.txt is really <target>/../evil.txt
        ([("a", ("sym", ".")), ("a/../evil.txt", b"pwned")], "a/../evil.txt"),
        ([("a", ("sym", ".")), ("h", ("hard", "a/../outside.txt"))], "h"),
        ([("dev", ("chr", ""))], "dev"),
    ],
)
def test_tar_links_and_specials_escaping_rejected(tmp_path, members, bad):
    arc = _tar(tmp_path / "links.tar.gz", members)
    with pytest.raises(UnsafeArchiveError, match=f"member '{bad}'"):
        safe_extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_zip_member_with_dotdot_is_refused_even_if_lexically_inside(tmp_path):
    arc = _zip(tmp_path / "dots.zip", {"a/../b.txt": b"x"})
    with pytest.raises(UnsafeArchiveError, match="member 'a/../b.txt' contains"):
        safe_extract(arc, tmp_path / "out")


def test_zip_symlink_escaping_rejected(tmp_path):
    arc = tmp_path / "sym.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "../../etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="member 'link' links outside"):
        safe_extract(arc, tmp_path / "out")


def test_failed_extract_leaves_existing_target_alone_success_replaces_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(_zip(tmp_path / "bad.zip", {"../x": b""}), out)
    assert (out / "old.txt").read_text() == "old"
    safe_extract(_zip(tmp_path / "good.zip", {"new.txt": b"new"}), out)
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert _leftovers(tmp_path) == []


def test_cli_extract(tmp_path, capsys):
    good = _zip(tmp_path / "good.zip", {"a.txt": b"A"})
    assert main(["extract", "--archive", str(good), "--out", str(tmp_path / "g")]) == 0
    bad = _zip(tmp_path / "bad.zip", {"../evil": b"x"})
    assert main(["extract", "--archive", str(bad), "--out", str(tmp_path / "b")]) == 1
    assert "member '../evil'" in capsys.readouterr().err


def test_subdir_keeps_only_that_folder_and_leaves_siblings_alone(tmp_path):
    # nerf_synthetic.zip holds nerf_synthetic/<scene>/ (+ __MACOSX/): extracting it into the data
    # root itself replaced the whole root; --subdir extracts only the scenes, into their folder
    data = tmp_path / "data"
    (data / "kodak").mkdir(parents=True)
    (data / "kodak" / "kodim01.png").write_bytes(b"png")
    arc = _zip(
        tmp_path / "nerf_synthetic.zip",
        {"nerf_synthetic/lego/transforms_train.json": b"{}", "__MACOSX/._lego": b"junk"},
    )
    files = safe_extract(arc, data / "nerf_synthetic", subdir="nerf_synthetic")
    assert [p.relative_to(data).as_posix() for p in files] == ["nerf_synthetic/lego/transforms_train.json"]
    assert (data / "kodak" / "kodim01.png").read_bytes() == b"png"
    assert not (data / "__MACOSX").exists() and _leftovers(data) == []
    with pytest.raises(CorruptArchiveError, match="no top-level folder 'scenes'"):
        safe_extract(arc, data / "x", subdir="scenes")
    assert not (data / "x").exists() and _leftovers(data) == []
