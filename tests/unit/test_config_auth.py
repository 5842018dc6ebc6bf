"""Credential sources: token files that rotate, and exec plugins run for real."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List

import attrs
import pytest

from kubesync.config import Credentials, ExecAuth, ExecSpec, TokenFileAuth
from kubesync.config.auth import TOKEN_FILE_REREAD, parse_rfc3339
from kubesync.core.clock import FakeClock as MonotonicClock
from kubesync.errors import ConfigError, ExecPluginError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PLUGIN = FIXTURES / "exec_plugin.py"
PKI = FIXTURES / "kubeconfig" / "pki"
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


class Plugin:
    """The fixture plugin, wired to a run counter in a temp folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count_file = folder / "runs"

    def spec(self, api_version: str = V1, **env: str) -> ExecSpec:
        pairs = {"PLUGIN_COUNT_FILE": str(self.count_file), **env}
        return ExecSpec(
            command=sys.executable,
            args=(str(PLUGIN),),
            api_version=api_version,
            env=tuple(pairs.items()),
            interactive_mode="Never",
            install_hint="pip install the-plugin",
            source="/k/config",
            key="users[u].user.exec",
        )

    @property
    def runs(self) -> int:
        return len(self.count_file.read_text().splitlines()) if self.count_file.exists() else 0


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    return Plugin(tmp_path)


def token(creds: Credentials) -> str:
    return creds.headers["Authorization"].removeprefix("Bearer ")


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- token files ------------------------------------------------------------------------


def test_token_file_is_reread_when_replaced(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first")
    auth = TokenFileAuth(str(path))
    assert token(auth.credentials()) == "first"
    fresh = tmp_path / "token.new"
    fresh.write_text("second")
    os.replace(fresh, path)  # how the kubelet rotates: a new file swapped in
    assert token(auth.credentials()) == "second"


def test_token_file_rewritten_in_place_is_reread_by_mtime(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("aaaa")
    auth = TokenFileAuth(str(path))
    before = os.stat(path)
    path.write_text("bbbb")  # same size, same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert token(auth.credentials()) == "bbbb"


def test_token_file_keeps_last_token_when_the_file_vanishes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("kept")
    auth = TokenFileAuth(str(path))
    path.unlink()
    assert token(auth.credentials()) == "kept"


def test_token_file_refresh_rereads_and_says_whether_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("aaaa")
    auth = TokenFileAuth(str(path))
    first = auth.credentials()
    assert auth.refresh(first) is False  # same token: a retry would not help
    stamp = os.stat(path)
    path.write_text("bbbb")
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # change invisible to stat
    assert token(auth.credentials()) == "aaaa"
    assert auth.refresh(first) is True
    assert token(auth.credentials()) == "bbbb"


def test_unreadable_token_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="cannot be read or is empty"):
        TokenFileAuth(str(tmp_path / "empty"), source="/k/config", key="users[u].user.tokenFile")


def test_token_file_repr_has_no_token(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("SECRET-TOKEN")
    auth = TokenFileAuth(str(tmp_path / "t"))
    assert "SECRET" not in repr(auth) and "SECRET" not in repr(auth.credentials())


# -- exec plugins -------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", [V1, V1BETA1])
def test_exec_plugin_token_is_cached_without_expiry(plugin: Plugin, api_version: str) -> None:
    auth = ExecAuth(plugin.spec(api_version))
    assert token(auth.credentials()) == "exec-token-1"
    assert token(auth.credentials()) == "exec-token-1"
    assert plugin.runs == 1


def test_exec_plugin_reruns_once_expired(plugin: Plugin) -> None:
    expiry = "2030-01-01T00:00:00Z"
    clock = FakeClock(parse_rfc3339(expiry) - 60)
    auth = ExecAuth(plugin.spec(PLUGIN_EXPIRY=expiry), clock=clock)
    assert token(auth.credentials()) == "exec-token-1"
    clock.now += 59
    assert token(auth.credentials()) == "exec-token-1"
    clock.now += 1
    assert token(auth.credentials()) == "exec-token-2"
    assert plugin.runs == 2


def test_exec_plugin_reruns_after_a_401_once_for_many_threads(plugin: Plugin) -> None:
    auth = ExecAuth(plugin.spec())
    rejected = auth.credentials()
    barrier = threading.Barrier(8)
    answers: List[bool] = []

    def refresh() -> None:
        barrier.wait()
        answers.append(auth.refresh(rejected))

    threads = [threading.Thread(target=refresh) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [True] * 8
    assert token(auth.credentials()) == "exec-token-2"
    assert plugin.runs == 2


def test_exec_plugin_first_use_from_many_threads_runs_it_once(plugin: Plugin) -> None:
    auth = ExecAuth(plugin.spec())
    barrier = threading.Barrier(16)
    tokens: List[str] = []

    def use() -> None:
        barrier.wait()
        tokens.append(token(auth.credentials()))

    threads = [threading.Thread(target=use) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tokens == ["exec-token-1"] * 16 and plugin.runs == 1


def test_exec_plugin_gets_env_and_cluster_info(plugin: Plugin, tmp_path: Path) -> None:
    info_file = tmp_path / "info.json"
    cluster = {"server": "https://k:6443", "config": {"audience": "a"}}
    spec = plugin.spec(PLUGIN_INFO_FILE=str(info_file), PLUGIN_TOKEN="custom")
    auth = ExecAuth(attrs.evolve(spec, cluster=cluster))
    assert token(auth.credentials()) == "custom-1"
    info: Dict[str, Any] = json.loads(info_file.read_text())
    assert info == {
        "apiVersion": V1,
        "kind": "ExecCredential",
        "spec": {"interactive": False, "cluster": cluster},
    }


def test_exec_plugin_without_provide_cluster_info_gets_no_cluster(
    plugin: Plugin, tmp_path: Path
) -> None:
    info_file = tmp_path / "info.json"
    ExecAuth(plugin.spec(V1BETA1, PLUGIN_INFO_FILE=str(info_file))).credentials()
    assert '"cluster"' not in info_file.read_text()


def test_exec_plugin_interactive_when_stdin_is_a_terminal(plugin: Plugin, tmp_path: Path) -> None:
    info_file = tmp_path / "info.json"
    spec = plugin.spec(PLUGIN_INFO_FILE=str(info_file))
    spec = attrs.evolve(spec, interactive_mode="IfAvailable")
    ExecAuth(spec, stdin_is_terminal=lambda: True).credentials()
    assert '"interactive": true' in info_file.read_text()


def test_exec_plugin_always_interactive_without_terminal_fails_before_running(
    plugin: Plugin,
) -> None:
    spec = attrs.evolve(plugin.spec(), interactive_mode="Always")
    with pytest.raises(ExecPluginError, match="not a terminal"):
        ExecAuth(spec, stdin_is_terminal=lambda: False).credentials()
    assert plugin.runs == 0


def test_failing_exec_plugin_error_carries_its_stderr(plugin: Plugin) -> None:
    auth = ExecAuth(plugin.spec(PLUGIN_FAIL="boom: no session, run login"))
    with pytest.raises(ExecPluginError) as info:
        auth.credentials()
    err = info.value
    assert err.exit_code == 3 and "boom: no session, run login" in err.stderr
    assert "boom: no session" in str(err) and "exit status 3" in str(err)
    assert (err.source, err.key) == ("/k/config", "users[u].user.exec")


def test_missing_exec_plugin_error_shows_the_install_hint(plugin: Plugin, tmp_path: Path) -> None:
    spec = attrs.evolve(plugin.spec(), command=str(tmp_path / "kubectl-nope"))
    with pytest.raises(ExecPluginError) as info:
        ExecAuth(spec).credentials()
    assert "was not found" in str(info.value) and "pip install the-plugin" in str(info.value)
    assert info.value.exit_code is None


def test_exec_plugin_bad_output_is_not_quoted(plugin: Plugin) -> None:
    auth = ExecAuth(plugin.spec(PLUGIN_GARBAGE="token=SECRET-IN-STDOUT"))
    with pytest.raises(ExecPluginError) as info:
        auth.credentials()
    assert "no JSON ExecCredential" in str(info.value)
    assert "SECRET-IN-STDOUT" not in str(info.value) + repr(info.value)


def test_exec_plugin_printing_another_api_version_is_rejected(plugin: Plugin) -> None:
    auth = ExecAuth(plugin.spec(V1, PLUGIN_API_VERSION=V1BETA1))
    with pytest.raises(ExecPluginError, match="apiVersion"):
        auth.credentials()


def test_exec_plugin_that_hangs_is_stopped(plugin: Plugin) -> None:
    spec = attrs.evolve(plugin.spec(PLUGIN_SLEEP="30"), timeout=0.3)
    with pytest.raises(ExecPluginError, match=r"did not finish within 0\.3 s"):
        ExecAuth(spec).credentials()


def test_exec_plugin_client_certificate(plugin: Plugin) -> None:
    creds = ExecAuth(plugin.spec(PLUGIN_CERT_DIR=str(PKI))).credentials()
    assert "Authorization" not in creds.headers
    assert creds.client_cert is not None
    assert creds.client_cert.cert_pem == (PKI / "client.crt").read_bytes()
    assert creds.client_cert.key_pem == (PKI / "client.key").read_bytes()
    assert "PRIVATE" not in repr(creds)


def test_exec_reprs_hide_tokens_and_env_values(plugin: Plugin) -> None:
    auth = ExecAuth(plugin.spec(PLUGIN_TOKEN="HIDDEN-PREFIX", AWS_SECRET="HIDDEN-VALUE"))
    creds = auth.credentials()
    for text in (repr(auth), repr(auth.spec), repr(creds), str(creds)):
        assert "HIDDEN" not in text
    assert "AWS_SECRET" in repr(auth.spec)


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2030-01-01T00:00:00Z", 1893456000.0),
        ("2030-01-01T01:00:00+01:00", 1893456000.0),
        ("2030-01-01T00:00:00.123456789Z", 1893456000.123456),
    ],
)
def test_rfc3339_timestamps(text: str, epoch: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(epoch)


@pytest.mark.parametrize("text", ["2030-01-01", "2030-01-01T00:00:00", "soon", 5])
def test_rfc3339_rejects_other_forms(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_token_file_is_reread_on_a_timer_when_its_stat_does_not_change(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("aaaa")
    clock = MonotonicClock()
    auth = TokenFileAuth(str(path), clock=clock)
    stamp = os.stat(path)
    path.write_text("bbbb")
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same mtime, size, inode
    clock.advance(TOKEN_FILE_REREAD - 1)
    assert token(auth.credentials()) == "aaaa"  # not yet: a stat per request is cheap
    clock.advance(1)
    assert token(auth.credentials()) == "bbbb"
