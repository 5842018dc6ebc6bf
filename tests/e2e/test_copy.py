"""copy_to and copy_from on the local cluster's real node: folders, files, 10 MB, errors,
and crafted archives from a container whose ``tar`` lies, refused with nothing written.

The pod has three containers: ``main`` (busybox, a real tar), ``notar`` (no tar on its
PATH) and ``evil``, whose ``tar`` on the PATH passes extraction to the real one but
answers ``tar cf - -C DIR NAME`` with the file ``/crafted/NAME`` (never answering for
NAME ``hang``, never exiting after it for NAMEs ``stall...``): what a compromised
container could do to someone copying from it.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import tarfile
import tracemalloc
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest

from kubesync import Api, Client, errors
from kubesync.client import podcopy
from kubesync.models.core_v1 import Container, EnvVar, Pod, PodSpec
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.conditions import is_pod_running
from kubesync.runtime.wait import await_condition
from kubesync.testing import TEST_IMAGE
from tests.helpers import create_when_admitted, eventually, file_tree

pytestmark = [pytest.mark.e2e, pytest.mark.kube_node]
#: A pod on a warm node runs within a few seconds; a cold first one imports and unpacks.
RUN_TIMEOUT = 90
POD = "files"
TEN_MB = 10 * 1024 * 1024
#: Python allocations allowed while 10 MB stream through: the exec buffers (1 MiB per
#: stream) and tar's blocks, far below the file itself.
MEMORY_BOUND = 6 * 1024 * 1024

LYING_TAR = """\
mkdir -p /fake /crafted
cat > /fake/tar <<'EOF'
#!/bin/sh
if [ "$1" = cf ]; then
  [ "$5" = hang ] && exec sleep 3600
  cat "/crafted/$5"
  case "$5" in stall*) exec sleep 3600;; esac
  exit 0
fi
exec /bin/tar "$@"
EOF
chmod 755 /fake/tar
exec sleep 3600
"""


@pytest.fixture(scope="module")
def pods(kube_client: Client) -> Iterator[Api[Pod]]:
    """One running pod with the three containers, for the whole module."""
    namespace = f"kst-copy-{secrets.token_hex(3)}"
    kube_client.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    api = Api(kube_client, Pod, namespace=namespace)
    pod = Pod(metadata=ObjectMeta(name=POD), spec=PodSpec(
        termination_grace_period_seconds=1, containers=[
            Container(name="main", image=TEST_IMAGE, command=["sleep", "3600"]),
            Container(name="notar", image=TEST_IMAGE, command=["/bin/sleep", "3600"],
                      env=[EnvVar(name="PATH", value="/nowhere")]),
            Container(name="evil", image=TEST_IMAGE, command=["sh", "-c", LYING_TAR],
                      env=[EnvVar(name="PATH", value="/fake:/bin")]),
        ]))

    def lying() -> bool:
        return api.exec(POD, ["sh", "-c", "test -x /fake/tar"], container="evil").returncode == 0

    try:
        create_when_admitted(api, pod)
        await_condition(api, POD, is_pod_running(), timeout=RUN_TIMEOUT)
        eventually(lying, timeout=30, what="the evil container's tar is in place")
        yield api
    finally:
        kube_client.request("DELETE", f"/api/v1/namespaces/{namespace}")


def sh(pods: Api[Pod], script: str, container: str = "main") -> str:
    return pods.exec(POD, ["sh", "-c", script], container=container,
                     check=True).stdout.decode()


def make_tree(root: Path) -> None:
    """A folder with a file, a subfolder, a symlink, long and non-ASCII names, modes."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "file.txt").write_bytes(b"hello\n")
    (root / "file.txt").chmod(0o640)
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho ran\n")
    (root / "run.sh").chmod(0o755)
    (root / "empty").write_bytes(b"")
    (root / "sub" / "inner.bin").write_bytes(os.urandom(70_000))
    (root / "sub" / "deeper" / ("n" * 110 + "-é.txt")).write_bytes("ünïcode\n".encode())
    (root / "sub").chmod(0o750)
    (root / "link").symlink_to("sub/inner.bin")
    (root / "sub" / "up").symlink_to("../file.txt")


def test_a_folder_goes_there_and_back_byte_identical(pods: Api[Pod], tmp_path: Path) -> None:
    src, back = tmp_path / "src", tmp_path / "back"
    src.mkdir()
    make_tree(src)
    pods.copy_to(POD, src, "/tmp/tree", container="main")
    # The pod's own view, not only the round trip: names, modes, link targets, bytes.
    listing = sh(pods, "cd /tmp/tree && find . | sort | while read f; do "
                       "stat -c '%n %a %F' \"$f\"; done; readlink link; readlink sub/up; "
                       "md5sum sub/inner.bin")
    lines = listing.splitlines()
    assert "./file.txt 640 regular file" in lines and "./run.sh 755 regular file" in lines
    assert "./sub 750 directory" in lines and "./link 777 symbolic link" in lines
    assert f"./sub/deeper/{'n' * 110}-é.txt 644 regular file" in lines
    assert "sub/inner.bin" in lines and "../file.txt" in lines
    assert hashlib.md5((src / "sub" / "inner.bin").read_bytes()).hexdigest() in listing
    pods.copy_from(POD, "/tmp/tree", back, container="main")
    assert file_tree(back) == file_tree(src)
    assert sorted(os.listdir(tmp_path)) == ["back", "src"]  # no staging folder left


def test_a_single_file_goes_both_ways_with_its_mode(pods: Api[Pod], tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_bytes(b"just one\n")
    one.chmod(0o600)
    pods.copy_to(POD, one, "/tmp/one.txt", container="main")
    assert sh(pods, "cat /tmp/one.txt; stat -c %a /tmp/one.txt") == "just one\n600\n"
    sh(pods, "echo changed > /tmp/one.txt; chmod 604 /tmp/one.txt")
    pods.copy_from(POD, "/tmp/one.txt", one, container="main")  # replaces the file there
    assert one.read_bytes() == b"changed\n" and (one.stat().st_mode & 0o777) == 0o604
    assert os.listdir(tmp_path) == ["one.txt"]


def test_a_remote_symlink_named_is_followed(pods: Api[Pod], tmp_path: Path) -> None:
    sh(pods, "mkdir -p /tmp/real && echo real > /tmp/real/f && ln -sfn /tmp/real /tmp/alias")
    pods.copy_from(POD, "/tmp/alias", tmp_path / "got", container="main")
    assert file_tree(tmp_path / "got") == {"f": ("file", b"real\n", 0o644)}


def copied_with_peak(copy: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        copy()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_ten_megabytes_stream_both_ways_in_bounded_memory(
        pods: Api[Pod], tmp_path: Path) -> None:
    big, back = tmp_path / "big", tmp_path / "big.back"
    big.write_bytes(os.urandom(TEN_MB))
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    peak_to = copied_with_peak(lambda: pods.copy_to(POD, big, "/tmp/big", container="main",
                                                       timeout=120))
    assert sh(pods, "sha256sum /tmp/big").split()[0] == digest
    peak_from = copied_with_peak(lambda: pods.copy_from(POD, "/tmp/big", back,
                                                           container="main", timeout=120))
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest
    assert peak_to < MEMORY_BOUND and peak_from < MEMORY_BOUND, (peak_to, peak_from)


# -- a container that sends a crafted archive -------------------------------------------


def crafted(name: str, members: List[Tuple[str, bytes, str]]) -> bytes:
    """A tar archive: the folder ``name``, then (member name, tar type, link target)
    members; files hold b"owned"."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as archive:
        top = tarfile.TarInfo(name)
        top.type = tarfile.DIRTYPE
        archive.addfile(top)
        for member, kind, target in members:
            info = tarfile.TarInfo(member)
            info.type, info.linkname = kind, target
            body = b"owned" if kind == REG else b""
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buf.getvalue()


REG, SYM, LNK = tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
CRAFTED: List[Tuple[str, List[Tuple[str, bytes, str]], str]] = [
    ("dotdot", [("dotdot/ok", REG, ""), ("../x", REG, "")], "../x"),
    ("deepdotdot", [("deepdotdot/ok", REG, ""), ("deepdotdot/a/../../../x", REG, "")],
     "deepdotdot/a/../../../x"),
    ("absolute", [("/tmp/kst-owned", REG, "")], "/tmp/kst-owned"),
    ("linkout", [("linkout/l", SYM, "../../x"), ("linkout/l/owned", REG, "")], "linkout/l"),
    ("abslink", [("abslink/l", SYM, "/etc")], "abslink/l"),
    ("hardout", [("hardout/h", LNK, "../x")], "hardout/h"),
    ("chain", [("chain/a", SYM, "."), ("chain/b", SYM, "a/..")], "chain/b"),
]


@pytest.mark.parametrize("name, members, refused", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_a_crafted_archive_from_the_pod_is_refused_with_nothing_written(
        pods: Api[Pod], tmp_path: Path, name: str, members: List[Tuple[str, bytes, str]],
        refused: str) -> None:
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / name).write_bytes(crafted(name, members))
    pods.copy_to(POD, staged / name, f"/crafted/{name}", container="evil")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(errors.CopyError) as info:
        pods.copy_from(POD, f"/anywhere/{name}", work / "dest", container="evil")
    assert info.value.member == refused and repr(refused) in str(info.value)
    assert os.listdir(work) == []  # neither the destination nor a staging folder
    assert sorted(os.listdir(tmp_path)) == ["staged", "work"]  # no ../x either
    assert not Path("/tmp/kst-owned").exists()


# -- errors and the timeout -------------------------------------------------------------


def test_a_missing_remote_path_fails_with_tars_exit_code_and_stderr(
        pods: Api[Pod], tmp_path: Path) -> None:
    with pytest.raises(errors.CopyError) as info:
        pods.copy_from(POD, "/no/such/path", tmp_path / "dest", container="main")
    assert info.value.returncode == 1 and b"No such file or directory" in info.value.stderr
    assert "/no/such/path" in str(info.value) and "No such file" in str(info.value)
    assert os.listdir(tmp_path) == []
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(errors.CopyError) as info:
        pods.copy_to(POD, tmp_path / "f", "/no/such/folder/f", container="main")
    assert info.value.returncode == 1 and b"/no/such/folder" in info.value.stderr


def test_a_missing_local_path_is_file_not_found(pods: Api[Pod], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        pods.copy_to(POD, tmp_path / "absent", "/tmp/absent", container="main")
    assert info.value.filename == str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError) as info:
        pods.copy_from(POD, "/tmp/one.txt", tmp_path / "absent" / "one.txt",
                       container="main")
    assert info.value.filename == str(tmp_path / "absent")


def test_a_container_without_tar_is_a_clear_error(pods: Api[Pod], tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(errors.CopyError) as info:
        pods.copy_to(POD, tmp_path / "f", "/tmp/f", container="notar")
    assert "could not run tar" in str(info.value) and "notar" in str(info.value)
    assert "executable file not found" in str(info.value)
    with pytest.raises(errors.CopyError) as info:
        pods.copy_from(POD, "/tmp", tmp_path / "dest", container="notar")
    assert "could not run tar" in str(info.value)
    assert os.listdir(tmp_path) == ["f"]


def test_a_copy_that_never_ends_is_bounded_by_its_timeout(
        pods: Api[Pod], tmp_path: Path) -> None:
    with pytest.raises(errors.RequestTimeout) as info:
        pods.copy_from(POD, "/anywhere/hang", tmp_path / "dest", container="evil",
                       timeout=3)
    assert "3 s" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_a_container_that_never_exits_after_its_archive_ends_the_copy(
        pods: Api[Pod], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podcopy, "TAR_EXIT_GRACE", 2.0)
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "stall").write_bytes(crafted("stall", [("stall/ok", REG, "")]))
    (staged / "stallgarbage").write_bytes(b"not a tar header " * 100)
    for name in ("stall", "stallgarbage"):
        pods.copy_to(POD, staged / name, f"/crafted/{name}", container="evil")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(errors.RequestTimeout) as timed_out:
        pods.copy_from(POD, "/anywhere/stall", work / "dest", container="evil")
    assert "still running after 2 s" in str(timed_out.value)
    with pytest.raises(errors.CopyError) as broken:
        pods.copy_from(POD, "/anywhere/stallgarbage", work / "dest", container="evil")
    assert "is broken" in str(broken.value)
    assert os.listdir(work) == []
