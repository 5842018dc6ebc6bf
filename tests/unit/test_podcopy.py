"""The copy guard and archive builder of podcopy, with crafted tar streams and no server.

Each refused archive is checked for its error (naming the member) and for leaving nothing
behind: neither the destination, nor the staging folder, nor the place it aimed at.
"""

from __future__ import annotations

import io
import os
import pickle
import stat
import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from kubesync import errors
from kubesync.client.podcopy import (
    Extraction,
    extract,
    send_archive,
    split_remote,
    walk,
)
from tests.helpers import file_tree

SOURCE = "pod ns/p path /data"
MTIME = 1_700_000_000


def tar_of(*members: tarfile.TarInfo, data: Optional[Dict[str, bytes]] = None) -> bytes:
    """A tar stream of ``members``; files get their bytes from ``data`` by name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|", format=tarfile.GNU_FORMAT) as archive:
        for info in members:
            body = (data or {}).get(info.name, b"")
            if info.isreg():
                info.size = len(body)
                archive.addfile(info, io.BytesIO(body))
            else:
                archive.addfile(info)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, *, link: str = "",
          mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, link, mode, MTIME
    return info


def folder(name: str, mode: int = 0o755) -> tarfile.TarInfo:
    return entry(name, tarfile.DIRTYPE, mode=mode)


def symlink(name: str, target: str) -> tarfile.TarInfo:
    return entry(name, tarfile.SYMTYPE, link=target, mode=0o777)


def hardlink(name: str, target: str) -> tarfile.TarInfo:
    return entry(name, tarfile.LNKTYPE, link=target)


def run(dest: Path, raw: bytes, top: str = "data") -> Optional[str]:
    """What copy_from does with a stream: extract, commit, and never leave staging."""
    extraction = Extraction(dest, top, source=SOURCE)
    try:
        link = extract(io.BytesIO(raw), extraction)
        if link is None:
            extraction.commit()
        return link
    finally:
        extraction.discard()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The destination's folder; ``tmp_path/outside`` stands for the rest of the disk."""
    (tmp_path / "work").mkdir()
    (tmp_path / "outside").mkdir()
    return tmp_path / "work"


def assert_refused(work: Path, raw: bytes, member: str, top: str = "data") -> errors.CopyError:
    with pytest.raises(errors.CopyError) as info:
        run(work / "out", raw, top)
    assert info.value.member == member
    assert repr(member) in str(info.value) and SOURCE in str(info.value)
    assert "nothing was written" in str(info.value)
    assert os.listdir(work) == []  # no destination, no staging folder
    assert os.listdir(work.parent / "outside") == []
    assert not (work.parent / "x").exists()
    return info.value


# -- refused archives -------------------------------------------------------------------


def test_an_absolute_member_is_refused(work: Path) -> None:
    raw = tar_of(folder("data"), entry("/etc/x"), data={"/etc/x": b"owned"})
    assert "absolute path" in str(assert_refused(work, raw, "/etc/x"))


@pytest.mark.parametrize("name", ["../x", "data/../../x", "data/sub/../../../x"])
def test_a_member_with_dot_dot_is_refused(work: Path, name: str) -> None:
    raw = tar_of(folder("data"), entry(name), data={name: b"owned"})
    assert "'..'" in str(assert_refused(work, raw, name))


def test_a_member_outside_the_path_asked_for_is_refused(work: Path) -> None:
    raw = tar_of(folder("data"), entry("other/x"))
    assert "outside the path asked for" in str(assert_refused(work, raw, "other/x"))


def test_earlier_good_members_are_not_kept_when_a_later_one_is_refused(work: Path) -> None:
    raw = tar_of(folder("data"), entry("data/good"), folder("data/sub"), entry("../x"),
                 data={"data/good": b"fine"})
    assert_refused(work, raw, "../x")


@pytest.mark.parametrize("target", ["/etc", "/tmp/../etc/passwd"])
def test_a_symlink_to_an_absolute_path_is_refused(work: Path, target: str) -> None:
    raw = tar_of(folder("data"), symlink("data/l", target))
    assert "absolute path" in str(assert_refused(work, raw, "data/l"))


@pytest.mark.parametrize("target", ["../x", "../../outside", "sub/../../x", ".."])
def test_a_symlink_pointing_out_is_refused(work: Path, target: str) -> None:
    raw = tar_of(folder("data"), folder("data/sub"), symlink("data/l", target))
    message = str(assert_refused(work, raw, "data/l"))
    assert "resolves outside" in message and "links after it" not in message  # at once


def test_a_symlink_deep_inside_pointing_out_is_refused(work: Path) -> None:
    raw = tar_of(folder("data"), folder("data/a"), folder("data/a/b"),
                 symlink("data/a/b/l", "../../../outside"))
    assert_refused(work, raw, "data/a/b/l")


def test_a_chain_of_two_inside_symlinks_that_leads_out_is_refused(work: Path) -> None:
    # CVE-2019-11251's shape: each target looks inside on its own; through the first
    # link, the second's '..' climbs out of the copy.
    raw = tar_of(folder("data"), symlink("data/a", "."), symlink("data/b", "a/.."))
    assert "links after it" not in str(assert_refused(work, raw, "data/b"))


def test_a_chain_that_a_later_link_bends_out_is_refused_at_the_end(work: Path) -> None:
    # p -> q/.. is inside while q is a folder or missing; the later q -> . makes p the
    # copy's parent. Only the check of the whole copy sees it.
    raw = tar_of(folder("data"), symlink("data/p", "q/.."), symlink("data/q", "."))
    err = assert_refused(work, raw, "data/p")
    assert "with the links after it" in str(err)


def test_a_member_written_through_a_symlink_is_refused(work: Path) -> None:
    # An inside link first, then a file below it: tar never makes such an archive.
    raw = tar_of(folder("data"), folder("data/sub"), symlink("data/l", "sub"),
                 entry("data/l/x"))
    assert "through the symlink" in str(assert_refused(work, raw, "data/l/x"))


def test_a_file_below_a_symlink_to_outside_is_refused_at_the_link(work: Path) -> None:
    raw = tar_of(folder("data"), symlink("data/evil", "../../outside"),
                 entry("data/evil/x"), data={"data/evil/x": b"owned"})
    assert_refused(work, raw, "data/evil")


@pytest.mark.parametrize("target", ["../x", "/etc/passwd", "other/f", "data/../../x"])
def test_a_hard_link_pointing_out_is_refused(work: Path, target: str) -> None:
    raw = tar_of(folder("data"), entry("data/f"), hardlink("data/h", target))
    message = str(assert_refused(work, raw, "data/h"))
    assert f"hard link to {target!r}" in message


def test_a_symlink_to_nothing_is_refused(work: Path) -> None:
    assert "to nothing" in str(assert_refused(work, tar_of(folder("data"),
                                                           symlink("data/l", "")), "data/l"))


def test_a_hard_link_to_a_symlink_or_a_missing_file_is_refused(work: Path) -> None:
    raw = tar_of(folder("data"), symlink("data/l", "f"), hardlink("data/h", "data/l"))
    assert "not to a file" in str(assert_refused(work, raw, "data/h"))
    raw = tar_of(folder("data"), hardlink("data/h", "data/later"), entry("data/later"))
    assert_refused(work, raw, "data/h")


def test_a_hard_link_through_a_symlinked_folder_is_refused(work: Path) -> None:
    (work.parent / "outside" / "secret").write_bytes(b"secret")
    raw = tar_of(folder("data"), symlink("data/up", "."), hardlink("data/h", "data/up/f"))
    with pytest.raises(errors.CopyError) as info:
        run(work / "out", raw)
    assert info.value.member == "data/h" and os.listdir(work) == []


@pytest.mark.parametrize("kind, what", [(tarfile.CHRTYPE, "character device"),
                                        (tarfile.BLKTYPE, "block device"),
                                        (tarfile.FIFOTYPE, "FIFO")])
def test_device_files_and_fifos_are_refused(work: Path, kind: bytes, what: str) -> None:
    raw = tar_of(folder("data"), entry("data/dev", kind))
    assert what in str(assert_refused(work, raw, "data/dev"))


def test_a_member_after_a_copied_file_is_refused(work: Path) -> None:
    raw = tar_of(entry("data"), entry("data/x"))
    assert_refused(work, raw, "data/x")


def test_a_name_that_is_a_folder_and_a_file_is_refused(work: Path) -> None:
    raw = tar_of(folder("data"), folder("data/a"), entry("data/a"))
    assert "appears twice" in str(assert_refused(work, raw, "data/a"))


def test_the_error_pickles_with_its_member() -> None:
    err = errors.CopyError("refused", member="data/../x", returncode=2, stderr=b"oops")
    back = pickle.loads(pickle.dumps(err))
    assert (back.member, back.returncode, back.stderr, str(back)) == \
        ("data/../x", 2, b"oops", str(err))


# -- accepted archives ------------------------------------------------------------------


def test_a_folder_keeps_files_links_modes_and_mtimes(work: Path) -> None:
    long = "d" * 120
    raw = tar_of(
        folder("data", 0o750), entry("data/f", mode=0o640), entry("data/run", mode=0o4755),
        folder("data/ro", 0o555), entry("data/ro/inner", mode=0o600),
        symlink("data/l", "ro/inner"), symlink("data/dangling", "nowhere"),
        hardlink("data/h", "data/f"), folder(f"data/{long}"), entry(f"data/{long}/é"),
        data={"data/f": b"file", "data/run": b"#!/bin/sh\n", "data/ro/inner": b"in",
              f"data/{long}/é": b"unicode"})
    dest = work / "out"
    assert run(dest, raw) is None
    assert file_tree(dest) == {
        "dangling": ("link", "nowhere", 0),
        "f": ("file", b"file", 0o640),
        "h": ("file", b"file", 0o640),
        "l": ("link", "ro/inner", 0),
        "ro": ("dir", None, 0o555),
        "ro/inner": ("file", b"in", 0o600),
        "run": ("file", b"#!/bin/sh\n", 0o755),  # set-user-ID dropped
        long: ("dir", None, 0o755),
        f"{long}/é": ("file", b"unicode", 0o644),
    }
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750
    assert (dest / "f").stat().st_ino == (dest / "h").stat().st_ino
    assert int((dest / "f").stat().st_mtime) == MTIME == int((dest / "ro").stat().st_mtime)
    assert sorted(os.listdir(work)) == ["out"]
    (dest / "ro").chmod(0o755)  # so tmp_path can be cleaned


def test_a_single_file_becomes_the_destination_and_replaces_a_file_there(work: Path) -> None:
    dest = work / "copy.txt"
    dest.write_bytes(b"old")
    assert run(dest, tar_of(entry("data", mode=0o600), data={"data": b"new"})) is None
    assert dest.read_bytes() == b"new" and stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert os.listdir(work) == ["copy.txt"]


def test_members_named_from_dot_land_in_the_destination(work: Path) -> None:
    raw = tar_of(folder("./"), entry("./f"), folder("./sub"), entry("./sub/g"),
                 data={"./f": b"1", "./sub/g": b"2"})
    run(work / "out", raw, top=".")
    assert file_tree(work / "out")["sub/g"] == ("file", b"2", 0o644)


def test_a_folder_is_merged_into_a_folder_that_is_there(work: Path) -> None:
    dest = work / "out"
    (dest / "sub").mkdir(parents=True)
    dest.chmod(0o700)
    (dest / "keep").write_bytes(b"mine")
    (dest / "sub" / "f").write_bytes(b"old")
    raw = tar_of(folder("data", 0o755), folder("data/sub"), entry("data/sub/f"),
                 folder("data/new", 0o711), entry("data/new/g"),
                 data={"data/sub/f": b"new", "data/new/g": b"g"})
    run(dest, raw)
    assert (dest / "keep").read_bytes() == b"mine" and (dest / "sub" / "f").read_bytes() == b"new"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700  # a folder that was there keeps its mode
    assert stat.S_IMODE((dest / "new").stat().st_mode) == 0o711
    assert sorted(os.listdir(work)) == ["out"]


def test_a_later_member_with_the_same_name_wins(work: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|") as archive:
        archive.addfile(folder("data"))
        for body in (b"one", b"two"):
            info = entry("data/f")
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    run(work / "out", buf.getvalue())
    assert (work / "out" / "f").read_bytes() == b"two"


def test_a_symlink_as_the_copied_path_is_returned_to_follow_not_written(work: Path) -> None:
    assert run(work / "out", tar_of(symlink("data", "/real/data"))) == "/real/data"
    assert os.listdir(work) == []


# -- the destination is checked before anything is written ---------------------------------


def test_a_file_onto_a_folder_is_refused_before_writing(work: Path) -> None:
    (work / "out").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        run(work / "out", tar_of(entry("data"), data={"data": b"x"}))
    assert info.value.filename == str(work / "out")
    assert os.listdir(work) == ["out"] and os.listdir(work / "out") == []


def test_a_folder_onto_a_file_is_refused_before_writing(work: Path) -> None:
    (work / "out").write_bytes(b"mine")
    with pytest.raises(NotADirectoryError):
        run(work / "out", tar_of(folder("data"), entry("data/f")))
    assert os.listdir(work) == ["out"] and (work / "out").read_bytes() == b"mine"


def test_a_merge_that_would_replace_a_folder_moves_nothing(work: Path) -> None:
    dest = work / "out"
    (dest / "clash").mkdir(parents=True)
    raw = tar_of(folder("data"), entry("data/a"), entry("data/clash"),
                 data={"data/a": b"a", "data/clash": b"c"})
    with pytest.raises(IsADirectoryError) as info:
        run(dest, raw)
    assert info.value.filename == str(dest / "clash")
    assert os.listdir(dest) == ["clash"] and os.listdir(work) == ["out"]


def test_a_merge_never_writes_through_a_symlink_in_the_destination(work: Path) -> None:
    dest, outside = work / "out", work.parent / "outside"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    raw = tar_of(folder("data"), folder("data/sub"), entry("data/sub/x"))
    with pytest.raises(NotADirectoryError):
        run(dest, raw)
    assert os.listdir(outside) == [] and os.listdir(work) == ["out"]


def test_a_missing_destination_folder_is_file_not_found(work: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        Extraction(work / "no" / "out", "data", source=SOURCE)
    assert info.value.filename == str(work / "no")


def test_an_archive_that_is_not_tar_is_a_tar_error(work: Path) -> None:
    with pytest.raises(tarfile.TarError):
        run(work / "out", b"not a tar archive at all" * 40)
    assert os.listdir(work) == []


# -- what copy_to sends -----------------------------------------------------------------


def archive_of(src: Path, top: str = "data") -> List[tarfile.TarInfo]:
    buf = io.BytesIO()
    send_archive(buf, list(walk(os.path.realpath(src), top)))
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue()), mode="r:") as archive:
        return archive.getmembers()


def test_the_sent_archive_keeps_symlinks_as_symlinks_and_drops_ownership(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "f").write_bytes(b"data")
    (src / "f").chmod(0o4750)
    (src / "out").symlink_to("/etc")  # outside: sent as the link, never followed
    (src / "in").symlink_to("sub")
    os.link(src / "f", src / "hard")
    members = {m.name: m for m in archive_of(src)}
    assert sorted(members) == ["data", "data/f", "data/hard", "data/in", "data/out",
                               "data/sub"]
    assert members["data/out"].issym() and members["data/out"].linkname == "/etc"
    assert members["data/in"].issym() and members["data/in"].linkname == "sub"
    assert members["data/hard"].islnk() and members["data/hard"].linkname == "data/f"
    assert members["data/f"].mode == 0o750 and members["data/f"].size == 4
    assert all((m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "") for m in members.values())


def test_a_named_symlink_is_followed_but_not_those_inside(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "inner").symlink_to(tmp_path)
    (tmp_path / "named").symlink_to(real)
    members = archive_of(tmp_path / "named")
    assert [(m.name, m.isdir(), m.issym()) for m in members] == \
        [("data", True, False), ("data/inner", False, True)]


def test_a_fifo_in_the_source_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "pipe")
    with pytest.raises(errors.CopyError) as info:
        list(walk(str(src), "data"))
    assert info.value.member == "data/pipe" and str(src / "pipe") in str(info.value)


def test_what_is_sent_extracts_to_the_same_file_tree(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "deep").write_bytes(os.urandom(300_000))
    (src / "x").write_bytes(b"")
    (src / "a").chmod(0o750)
    (src / "link").symlink_to("a/b/deep")
    buf = io.BytesIO()
    send_archive(buf, list(walk(str(src), "data")))
    (tmp_path / "dst").mkdir()
    run(tmp_path / "dst" / "copy", buf.getvalue())
    assert file_tree(tmp_path / "dst" / "copy") == file_tree(src)


@pytest.mark.parametrize("remote, split", [
    ("/tmp/data", ("/tmp", "data")), ("/tmp/data/", ("/tmp", "data")),
    ("data", (".", "data")), ("/data", ("/", "data")), ("/", ("/", ".")),
    ("/tmp/.", ("/tmp/.", ".")), ("a/..", ("a/..", ".")),
])
def test_split_remote_gives_tars_folder_and_name(remote: str, split: Tuple[str, str]) -> None:
    assert split_remote(remote) == split


def test_an_empty_remote_path_is_a_usage_error() -> None:
    with pytest.raises(errors.UsageError):
        split_remote("")
