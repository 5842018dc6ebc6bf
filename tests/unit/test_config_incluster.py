"""In-cluster configuration from a fake pod environment and service-account folder."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

from kubesync import Config, ConfigError
from kubesync.config import TokenFileAuth, incluster, incluster_fields

CA = (
    Path(__file__).resolve().parent.parent / "fixtures" / "kubeconfig" / "pki" / "ca.crt"
).read_bytes()
ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@pytest.fixture
def sa_dir(tmp_path: Path) -> Path:
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "token").write_text("token-1")
    (tmp_path / "namespace").write_text("apps\n")
    return tmp_path


def test_in_cluster_config_from_env_and_files(sa_dir: Path) -> None:
    config = incluster.load(ENV, str(sa_dir))
    assert config.server == "https://10.96.0.1:443"
    assert config.namespace == "apps" and config.ca_pem == CA
    assert isinstance(config.auth, TokenFileAuth)
    assert config.auth.credentials().headers["Authorization"] == "Bearer token-1"


def test_in_cluster_token_is_reread_when_rotated(sa_dir: Path) -> None:
    config = incluster.load(ENV, str(sa_dir))
    assert config.auth is not None
    (sa_dir / "token.new").write_text("token-2")
    os.replace(sa_dir / "token.new", sa_dir / "token")
    assert config.auth.credentials().headers["Authorization"] == "Bearer token-2"


def test_ipv6_service_host_is_bracketed(sa_dir: Path) -> None:
    env = {**ENV, "KUBERNETES_SERVICE_HOST": "fd00::1"}
    assert incluster.load(env, str(sa_dir)).server == "https://[fd00::1]:443"


def test_namespace_defaults_when_the_file_is_missing(sa_dir: Path) -> None:
    (sa_dir / "namespace").unlink()
    assert incluster.load(ENV, str(sa_dir)).namespace == "default"


@pytest.mark.parametrize("missing", ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"])
def test_missing_service_env_names_the_variable(sa_dir: Path, missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConfigError) as info:
        incluster.load(env, str(sa_dir))
    assert info.value.key == missing and "not running in a cluster" in str(info.value)


def test_missing_ca_or_token_names_the_file(sa_dir: Path) -> None:
    (sa_dir / "token").unlink()
    with pytest.raises(ConfigError) as info:
        incluster.load(ENV, str(sa_dir))
    assert info.value.source == str(sa_dir / "token")
    (sa_dir / "ca.crt").unlink()
    with pytest.raises(ConfigError) as info:
        incluster.load(ENV, str(sa_dir))
    assert info.value.source == str(sa_dir / "ca.crt")


@pytest.fixture
def in_pod(sa_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process as a pod: the service env set, the account folder at ``sa_dir``."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    # The folder is read where the fields are resolved (incluster only re-exports it).
    monkeypatch.setattr(incluster_fields, "SERVICE_ACCOUNT_DIR", str(sa_dir))
    return sa_dir


def test_config_in_cluster_reads_the_service_account_folder(in_pod: Path) -> None:
    assert Config.in_cluster().namespace == "apps"


def test_the_public_loader_and_config_in_cluster_build_the_same_config(in_pod: Path) -> None:
    built, via_config = incluster.load(), Config.in_cluster()
    assert type(built) is Config and type(via_config) is Config
    # The token source is a fresh object each time: compare what it reads.
    assert isinstance(built.auth, TokenFileAuth) and isinstance(via_config.auth, TokenFileAuth)
    assert built.auth.path == via_config.auth.path
    assert attrs.evolve(built, auth=None) == attrs.evolve(via_config, auth=None)
