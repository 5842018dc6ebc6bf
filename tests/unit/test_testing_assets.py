"""Finding the cluster binaries, and cleaning up after killed runs."""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import List

import pytest

from kubesync.testing import TEST_IMAGE
from kubesync.testing.assets import (
    MissingBinaries,
    find_binaries,
    find_node_assets,
    version_folder,
)
from kubesync.testing.cluster import hostres, sweep_stale_folders


def _exe(folder: Path, name: str) -> Path:
    p = folder / name
    p.write_text("#!/bin/sh\n")
    p.chmod(0o755)
    return p


def test_assets_env_folder_wins_over_cache_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir, cache, on_path = tmp_path / "env", tmp_path / "cache", tmp_path / "path"
    for d in (env_dir, cache / "test-assets", on_path):
        d.mkdir(parents=True)
    _exe(env_dir, "etcd")
    _exe(cache / "test-assets", "etcd")
    _exe(cache / "test-assets", "etcdctl")
    _exe(on_path, "etcdctl")
    _exe(on_path, "kube-apiserver")
    monkeypatch.setenv("KUBESYNC_TEST_ASSETS", str(env_dir))
    monkeypatch.setenv("KUBESYNC_CACHE", str(cache))
    monkeypatch.setenv("PATH", str(on_path))
    found = find_binaries(["etcd", "etcdctl", "kube-apiserver"])
    assert found["etcd"] == str(env_dir / "etcd")
    assert found["etcdctl"] == str(cache / "test-assets" / "etcdctl")
    assert found["kube-apiserver"] == str(on_path / "kube-apiserver")


def test_missing_binaries_name_the_env_var_and_the_install_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBESYNC_TEST_ASSETS", str(tmp_path))
    monkeypatch.setenv("KUBESYNC_CACHE", str(tmp_path / "nothing"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaries) as info:
        find_binaries()
    text = str(info.value)
    assert "KUBESYNC_TEST_ASSETS" in text
    assert "scripts/install-test-cluster" in text
    assert "kube-apiserver" in text and "etcd" in text


def _cluster_folder(base: Path, name: str) -> Path:
    folder = base / f"kubesync-cluster-{name}"
    folder.mkdir()
    (folder / "owner.lock").write_text("")
    return folder


def test_sweep_removes_folders_nobody_holds_locked_only(tmp_path: Path) -> None:
    dead = _cluster_folder(tmp_path, "dead")
    live = _cluster_folder(tmp_path, "live")
    stopping = _cluster_folder(tmp_path, "stopping")  # its owner is gone, its node is not
    (stopping / "node").mkdir()
    (stopping / "node" / "node.lock").write_text("")
    legacy = tmp_path / "kubesync-cluster-legacy"  # no lock file: not ours to judge
    legacy.mkdir()
    other = tmp_path / "not-ours"
    other.mkdir()
    link = tmp_path / "kubesync-cluster-link"
    link.symlink_to(other)
    with open(live / "owner.lock") as held, open(stopping / "node" / "node.lock") as node:
        fcntl.flock(held, fcntl.LOCK_EX)
        fcntl.flock(node, fcntl.LOCK_EX)
        # The sweep runs in another process, as a second test run would.
        out = subprocess.run(
            [sys.executable, "-c", "import sys; from kubesync.testing.cluster import "
             "sweep_stale_folders as s; print(s(sys.argv[1]))", str(tmp_path)],
            capture_output=True, text=True, check=True).stdout
    assert out.strip() == repr([str(dead)])
    assert live.exists() and stopping.exists() and legacy.exists() and other.exists()
    assert link.is_symlink() and not dead.exists()


def test_a_version_resolves_to_its_newest_patch_folder(tmp_path: Path) -> None:
    for name in ("1.37.1", "1.37.10", "1.37.2", "1.20.2", "1.3.7", "node", "1.37.x"):
        (tmp_path / name).mkdir()
    assert version_folder(tmp_path, "1.37") == tmp_path / "1.37.10"
    assert version_folder(tmp_path, "1.37.2") == tmp_path / "1.37.2"
    assert version_folder(tmp_path, "1.3") == tmp_path / "1.3.7"
    assert version_folder(tmp_path, "1.36") is None
    with pytest.raises(ValueError, match=re.escape("'1.37' or '1.37.2', not 'newest'")):
        version_folder(tmp_path, "newest")


def test_find_binaries_for_a_version_takes_that_versions_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache" / "test-assets"
    for v in ("1.37.2", "1.20.2"):
        (cache / v).mkdir(parents=True)
        _exe(cache / v, "kube-apiserver")
    monkeypatch.delenv("KUBESYNC_TEST_ASSETS", raising=False)
    monkeypatch.setenv("KUBESYNC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_binaries(["kube-apiserver"], version="1.20") == {
        "kube-apiserver": str(cache / "1.20.2" / "kube-apiserver")}
    assert find_binaries(["kube-apiserver"], version="1.37")["kube-apiserver"].endswith(
        "1.37.2/kube-apiserver")
    with pytest.raises(MissingBinaries, match=re.escape("Kubernetes 1.36 needs kube-apiserver")):
        find_binaries(["kube-apiserver"], version="1.36")


def test_missing_node_assets_say_how_to_build_them_or_go_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBESYNC_TEST_ASSETS", raising=False)
    monkeypatch.setenv("KUBESYNC_CACHE", str(tmp_path))
    with pytest.raises(MissingBinaries) as info:
        find_node_assets()
    text = str(info.value)
    assert "install-test-cluster node" in text and "node=False" in text
    assert str(tmp_path / "test-assets" / "node") in text


def test_sweep_releases_what_a_dead_node_wrote_down_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: List[str] = []
    monkeypatch.setattr(hostres, "delete_bridge", lambda name: released.append(name))
    monkeypatch.setattr(hostres, "remove_cgroups", lambda root: released.append(root))
    monkeypatch.setattr(hostres, "restore_sysctls", lambda path: released.append(path))
    dead = _cluster_folder(tmp_path, "dead")
    (dead / "node-resources.json").write_text(
        json.dumps({"bridge": "ks-0a1b2c3d", "cgroup_root": "/kubesync-0a1b2c3d"}))
    # Names that are not ours are never touched, whatever the file says.
    odd = _cluster_folder(tmp_path, "odd")
    (odd / "node-resources.json").write_text(json.dumps(
        {"bridge": "eth0", "cgroup_root": "/kubesync-0a1b2c3d/../.."}))
    assert sorted(sweep_stale_folders(str(tmp_path))) == [str(dead), str(odd)]
    assert sorted(released) == sorted([
        "ks-0a1b2c3d", "/kubesync-0a1b2c3d",
        str(dead / "node" / "sysctls.json"), str(odd / "node" / "sysctls.json")])


def test_saved_kernel_settings_are_put_back_and_only_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = tmp_path / "proc"
    monkeypatch.setattr(hostres, "_sysctl_path", lambda name: str(proc / name))
    proc.mkdir()
    (proc / "kernel.panic").write_text("0\n")
    (proc / "vm.overcommit_memory").write_text("0\n")
    saved = tmp_path / "sysctls.json"
    hostres.save_sysctls(str(saved))
    (proc / "kernel.panic").write_text("10\n")  # as the kubelet sets it
    hostres.save_sysctls(str(saved))  # a second save keeps the first values
    saved.write_text(json.dumps({**json.loads(saved.read_text()), "kernel.modprobe": "/x"}))
    hostres.restore_sysctls(str(saved))
    assert (proc / "kernel.panic").read_text() == "0"
    assert not (proc / "kernel.modprobe").exists()


def test_a_flat_assets_folder_wins_over_a_decoy_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat, on_path = tmp_path / "flat", tmp_path / "path"
    flat.mkdir()
    on_path.mkdir()
    _exe(flat, "kubelet")
    _exe(on_path, "kubelet")
    monkeypatch.setenv("KUBESYNC_TEST_ASSETS", str(flat))
    monkeypatch.setenv("KUBESYNC_CACHE", str(tmp_path / "nothing"))
    monkeypatch.setenv("PATH", str(on_path))
    assert find_binaries(["kubelet"], version="1.37") == {"kubelet": str(flat / "kubelet")}


def test_the_test_images_are_byte_reproducible(tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "scripts" / "cluster" / "oci_image.py"
    fake = _exe(tmp_path, "busybox")
    fake.write_text("#!/bin/sh\necho bin/sh; echo usr/bin/nc; echo bin/busybox\n")
    outs = []
    for n in (1, 2):
        out = tmp_path / f"image{n}.tar"
        subprocess.run([sys.executable, str(script), "busybox", str(out), "--busybox",
                        str(fake)], check=True, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    with tarfile.open(tmp_path / "image1.tar") as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        mtimes = {m.mtime for m in tar.getmembers()}
    annotations = index["manifests"][0]["annotations"]
    assert annotations["io.containerd.image.name"] == TEST_IMAGE
    # Fixed times, not the clock's: the digest changes only with the content.
    assert mtimes == {1_700_000_000}
