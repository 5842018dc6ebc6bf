"""Finding the cluster binaries, and cleaning up after killed runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubesync.testing.assets import MissingBinaries, find_binaries
from kubesync.testing.cluster import sweep_stale_folders


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


def test_sweep_removes_folders_of_dead_owners_only(tmp_path: Path) -> None:
    dead = tmp_path / "kubesync-cluster-dead"
    live = tmp_path / "kubesync-cluster-live"
    other = tmp_path / "not-ours"
    for d in (dead, live, other):
        d.mkdir()
    # A pid that cannot exist (above the kernel's pid_max of 2**22).
    (dead / "owner.pid").write_text(str(2**22 + 1))
    (live / "owner.pid").write_text(str(os.getpid()))
    removed = sweep_stale_folders(str(tmp_path))
    assert removed == [str(dead)]
    assert live.exists() and other.exists() and not dead.exists()
