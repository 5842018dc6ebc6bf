"""Kubeconfig reading: every auth method, paths, merging, and errors naming file and key."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
import yaml

from kubesync import Config, ConfigError
from kubesync.config import (
    BasicAuth,
    ExecAuth,
    TokenAuth,
    TokenFileAuth,
    incluster_fields,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kubeconfig"
PKI = FIXTURES / "pki"
CA = (PKI / "ca.crt").read_bytes()
CLIENT_CRT = (PKI / "client.crt").read_bytes()
CLIENT_KEY = (PKI / "client.key").read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    user: Optional[Dict[str, Any]] = None,
    cluster: Optional[Dict[str, Any]] = None,
    namespace: Optional[str] = None,
) -> Dict[str, Any]:
    context: Dict[str, Any] = {"cluster": "c1", "user": "u1"}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ctx",
        "clusters": [
            {"name": "c1", "cluster": {"server": "https://10.0.0.1:6443", **(cluster or {})}}
        ],
        "contexts": [{"name": "ctx", "context": context}],
        "users": [{"name": "u1", "user": user or {}}],
    }


def write(folder: Path, doc: Any, name: str = "config") -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


def load(tmp_path: Path, **kw: Any) -> Config:
    return Config.from_kubeconfig(write(tmp_path, kubeconfig(**kw)))


def auth_header(config: Config) -> str:
    assert config.auth is not None
    return config.auth.credentials().headers["Authorization"]


# -- auth methods -------------------------------------------------------------------------


def test_token_user_gives_bearer_header_and_context_namespace(tmp_path: Path) -> None:
    config = load(tmp_path, user={"token": "s3cr3t"}, namespace="team-a")
    assert config.server == "https://10.0.0.1:6443"
    assert config.namespace == "team-a" and config.context == "ctx"
    assert isinstance(config.auth, TokenAuth)
    assert auth_header(config) == "Bearer s3cr3t"


def test_namespace_defaults_to_default(tmp_path: Path) -> None:
    assert load(tmp_path, user={"token": "t"}).namespace == "default"


def test_token_file_is_resolved_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "tok").write_text("file-token\n")
    config = load(tmp_path, user={"tokenFile": "secrets/tok"})
    assert isinstance(config.auth, TokenFileAuth)
    assert config.auth.path == str(tmp_path / "secrets" / "tok")
    assert auth_header(config) == "Bearer file-token"


def test_basic_auth_user(tmp_path: Path) -> None:
    config = load(tmp_path, user={"username": "admin", "password": "pa55"})
    assert isinstance(config.auth, BasicAuth)
    assert auth_header(config) == "Basic " + b64(b"admin:pa55")


def test_certificate_files_relative_to_the_kubeconfig_folder() -> None:
    config = Config.from_kubeconfig(FIXTURES / "certs.yaml")
    assert config.server == "https://127.0.0.1:6443"  # trailing slash dropped
    assert config.ca_pem == CA
    assert config.client_cert is not None
    assert config.client_cert.cert_pem == CLIENT_CRT and config.client_cert.key_pem == CLIENT_KEY
    assert config.auth is None and config.namespace == "team-a"


def test_certificate_data_fields_are_base64_decoded(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        user={"client-certificate-data": b64(CLIENT_CRT), "client-key-data": b64(CLIENT_KEY)},
        cluster={"certificate-authority-data": b64(CA)},
    )
    assert config.ca_pem == CA
    assert config.client_cert is not None and config.client_cert.key_pem == CLIENT_KEY


def test_tilde_in_paths_is_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "pki").mkdir(parents=True)
    (home / "pki" / "ca.crt").write_bytes(CA)
    monkeypatch.setenv("HOME", str(home))
    config = load(tmp_path / "elsewhere", cluster={"certificate-authority": "~/pki/ca.crt"})
    assert config.ca_pem == CA


def test_oidc_auth_provider_uses_the_id_token(tmp_path: Path) -> None:
    provider = {"name": "oidc", "config": {"id-token": "eyJ.id.tok", "refresh-token": "r"}}
    config = load(tmp_path, user={"auth-provider": provider})
    assert auth_header(config) == "Bearer eyJ.id.tok"


def test_exec_section_becomes_an_exec_spec(tmp_path: Path) -> None:
    exec_section = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "./bin/get-token",
        "args": ["--cluster", "prod"],
        "env": [{"name": "PROFILE", "value": "ops"}],
        "installHint": "install get-token",
        "interactiveMode": "Never",
        "provideClusterInfo": True,
    }
    extension = {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "x"}}
    config = load(
        tmp_path,
        user={"exec": exec_section},
        cluster={"certificate-authority-data": b64(CA), "extensions": [extension]},
    )
    assert isinstance(config.auth, ExecAuth)
    spec = config.auth.spec
    assert spec.command == str(tmp_path / "bin" / "get-token")  # a path: from the file's folder
    assert spec.args == ("--cluster", "prod") and spec.env == (("PROFILE", "ops"),)
    assert spec.install_hint == "install get-token" and spec.interactive_mode == "Never"
    assert spec.cluster == {
        "server": "https://10.0.0.1:6443",
        "certificate-authority-data": b64(CA),
        "config": {"audience": "x"},
    }


def test_exec_command_without_a_slash_is_looked_up_on_path(tmp_path: Path) -> None:
    exec_section = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws"}
    config = load(tmp_path, user={"exec": exec_section})
    assert isinstance(config.auth, ExecAuth)
    assert config.auth.spec.command == "aws"
    assert config.auth.spec.interactive_mode == "IfAvailable"  # v1beta1's default
    assert config.auth.spec.cluster is None  # provideClusterInfo not set


def test_exec_is_skipped_when_a_client_certificate_is_set(tmp_path: Path) -> None:
    user = {
        "client-certificate-data": b64(CLIENT_CRT),
        "client-key-data": b64(CLIENT_KEY),
        "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws"},
    }
    config = load(tmp_path, user=user)
    assert config.client_cert is not None and config.auth is None


def test_cluster_tls_and_proxy_settings(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        user={"token": "t"},
        cluster={
            "certificate-authority-data": b64(CA),
            "tls-server-name": "kubernetes.test",
            "proxy-url": "socks5://user:pw@proxy:1080",
            "disable-compression": True,
        },
    )
    assert config.tls_server_name == "kubernetes.test"
    assert config.proxy_url == "socks5://user:pw@proxy:1080"
    assert config.disable_compression is True
    assert "pw" not in repr(config)


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    config = load(tmp_path, cluster={"insecure-skip-tls-verify": True})
    assert config.insecure_skip_tls_verify is True and config.ca_pem is None


def test_impersonation_fields(tmp_path: Path) -> None:
    user = {
        "token": "t",
        "as": "jane",
        "as-uid": "42",
        "as-groups": ["devs", "ops"],
        "as-user-extra": {"scopes": ["view", "edit"]},
    }
    imp = load(tmp_path, user=user).impersonate
    assert imp is not None
    assert (imp.user, imp.uid, imp.groups) == ("jane", "42", ("devs", "ops"))
    assert imp.extra == {"scopes": ("view", "edit")}


def test_secrets_never_appear_in_config_repr_or_str(tmp_path: Path) -> None:
    for user in (
        {"token": "TOPSECRET"},
        {"username": "u", "password": "TOPSECRET"},
        {"client-certificate-data": b64(CLIENT_CRT), "client-key-data": b64(CLIENT_KEY)},
    ):
        config = load(tmp_path, user=user)
        for text in (repr(config), str(config), repr(config.auth), repr(config.client_cert)):
            assert "TOPSECRET" not in text
            assert "PRIVATE KEY" not in text and b64(CLIENT_KEY)[:40] not in text


# -- selection and merging ----------------------------------------------------------------


def test_context_cluster_and_user_arguments_override(tmp_path: Path) -> None:
    doc = kubeconfig(user={"token": "one"})
    doc["clusters"].append({"name": "c2", "cluster": {"server": "https://c2:443"}})
    doc["users"].append({"name": "u2", "user": {"token": "two"}})
    doc["contexts"].append({"name": "other", "context": {"cluster": "c2", "user": "u2"}})
    path = write(tmp_path, doc)
    assert Config.from_kubeconfig(path, context="other").server == "https://c2:443"
    picked = Config.from_kubeconfig(path, cluster="c2", user="u2")
    assert picked.context == "ctx" and picked.server == "https://c2:443"
    assert auth_header(picked) == "Bearer two"


def test_kubeconfig_list_merges_by_kubectl_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "b" / "pki").mkdir(parents=True)
    (tmp_path / "b" / "pki" / "ca.crt").write_bytes(CA)
    first = {
        "current-context": "dev",
        "clusters": [{"name": "shared", "cluster": {"server": "https://first:6443"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "shared", "user": "dev-user"}}],
    }
    second = {
        "current-context": "prod",  # ignored: the first file set current-context
        "clusters": [
            {"name": "shared", "cluster": {"server": "https://second:6443"}},  # ignored
            {
                "name": "prod",
                "cluster": {"server": "https://prod:6443", "certificate-authority": "pki/ca.crt"},
            },
        ],
        "users": [{"name": "dev-user", "user": {"token": "from-second"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "dev-user"}}],
    }
    third = {"users": [{"name": "dev-user", "user": {"token": "from-third"}}]}  # ignored
    paths = [
        write(tmp_path / "a", first),
        str(tmp_path / "missing"),  # kubectl skips files that do not exist
        "",
        write(tmp_path / "b", second),
        write(tmp_path / "c", third),
    ]
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(paths))
    config = Config.from_kubeconfig()
    assert (config.context, config.server) == ("dev", "https://first:6443")
    assert auth_header(config) == "Bearer from-second"
    prod = Config.from_kubeconfig(context="prod")
    assert prod.ca_pem == CA  # relative to the second file's folder, not the first's
    assert Config.infer().server == "https://first:6443"


def test_infer_uses_home_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path / ".kube", kubeconfig(user={"token": "t"}))
    assert Config.infer().server == "https://10.0.0.1:6443"


def test_infer_falls_back_to_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "token").write_text("sa-token")
    monkeypatch.setattr(incluster_fields, "SERVICE_ACCOUNT_DIR", str(tmp_path))  # read there
    assert Config.infer().server == "https://10.96.0.1:443"


def test_infer_without_any_configuration_says_what_it_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=r"no Kubernetes configuration found.*\.kube/config"):
        Config.infer()


# -- broken files -------------------------------------------------------------------------


def raises_config_error(path: Any, **kw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Config.from_kubeconfig(path, **kw)
    return info.value


def test_bad_yaml_names_file_and_line() -> None:
    err = raises_config_error(FIXTURES / "bad-yaml.yaml")
    assert err.source == str(FIXTURES / "bad-yaml.yaml")
    assert "not valid YAML at line" in err.message


def test_wrong_type_names_the_key() -> None:
    err = raises_config_error(FIXTURES / "wrong-types.yaml")
    assert err.key == "clusters[local].cluster.server"
    assert err.message == "must be a string, not int"
    assert str(FIXTURES / "wrong-types.yaml") in str(err)


@pytest.mark.parametrize(
    ("doc", "key", "message"),
    [
        ([1, 2], None, "must be a YAML mapping, not a list"),
        ({"clusters": {"a": 1}}, "clusters", "must be a list of clusters, not a mapping"),
        ({"users": ["u"]}, "users[0]", "must be a mapping, not a string"),
        ({"users": [{"user": {}}]}, "users[0].name", "is missing"),
        ({"users": [{"name": "a"}, {"name": "a"}]}, "users[a]", "is defined twice"),
    ],
)
def test_malformed_structure(tmp_path: Path, doc: Any, key: Optional[str], message: str) -> None:
    err = raises_config_error(write(tmp_path, doc))
    assert err.key == key and message in err.message


@pytest.mark.parametrize(
    ("user", "cluster", "key", "message"),
    [
        (
            {},
            {"insecure-skip-tls-verify": "yes"},
            "clusters[c1].cluster.insecure-skip-tls-verify",
            "must be a boolean",
        ),
        ({}, {"server": ""}, "clusters[c1].cluster.server", "is missing"),
        ({}, {"server": "10.0.0.1:6443"}, "clusters[c1].cluster.server", "http(s)://"),
        (
            {},
            {"certificate-authority": "nope.crt"},
            "clusters[c1].cluster.certificate-authority",
            "cannot read",
        ),
        (
            {},
            {"certificate-authority-data": "!!!"},
            "clusters[c1].cluster.certificate-authority-data",
            "not valid base64",
        ),
        (
            {},
            {"certificate-authority-data": b64(b"hello")},
            "clusters[c1].cluster.certificate-authority-data",
            "no valid PEM",
        ),
        (
            {},
            {"certificate-authority-data": b64(CA), "insecure-skip-tls-verify": True},
            "clusters[c1].cluster.insecure-skip-tls-verify",
            "cannot be combined",
        ),
        ({}, {"proxy-url": "ftp://proxy"}, "clusters[c1].cluster.proxy-url", "schemes"),
        (
            {"client-certificate": "missing.crt", "client-key": "missing.key"},
            {},
            "users[u1].user.client-certificate",
            "cannot read",
        ),
        (
            {"client-certificate-data": b64(CLIENT_CRT)},
            {},
            "users[u1].user.client-key",
            "is missing",
        ),
        ({"token": "t", "username": "u"}, {}, "users[u1].user.token", "only one is allowed"),
        ({"tokenFile": "no-such-token"}, {}, "users[u1].user.tokenFile", "cannot be read"),
        ({"token": 42}, {}, "users[u1].user.token", "must be a string, not int"),
        ({"as-groups": "devs"}, {}, "users[u1].user.as-groups", "list of strings"),
        (
            {"auth-provider": {"name": "gcp"}},
            {},
            "users[u1].user.auth-provider.name",
            "not supported",
        ),
        (
            {"auth-provider": {"name": "oidc", "config": {}}},
            {},
            "users[u1].user.auth-provider.config.id-token",
            "is missing",
        ),
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "x"}},
            {},
            "users[u1].user.exec.interactiveMode",
            "is required",
        ),
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
            {},
            "users[u1].user.exec.apiVersion",
            "must be one of",
        ),
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1"}},
            {},
            "users[u1].user.exec.command",
            "is missing",
        ),
        (
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "x",
                    "env": [{"name": "A"}],
                }
            },
            {},
            "users[u1].user.exec.env[0]",
            "name and a value",
        ),
    ],
)
def test_bad_values_name_file_and_key(
    tmp_path: Path, user: Dict[str, Any], cluster: Dict[str, Any], key: str, message: str
) -> None:
    path = write(tmp_path, kubeconfig(user=user, cluster=cluster))
    err = raises_config_error(path)
    assert (err.source, err.key) == (path, key)
    assert message in err.message


def test_missing_context_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, kubeconfig())
    err = raises_config_error(path, context="nope")
    assert err.key == "contexts" and "'nope' not found (known: ctx)" in err.message


def test_current_context_naming_nothing(tmp_path: Path) -> None:
    doc = kubeconfig()
    doc["current-context"] = "gone"
    err = raises_config_error(write(tmp_path, doc))
    assert err.key == "current-context"


def test_empty_file_has_no_current_context(tmp_path: Path) -> None:
    err = raises_config_error(write(tmp_path, ""))
    assert err.key == "current-context" and "no current-context" in err.message


def test_context_naming_undefined_user_or_cluster(tmp_path: Path) -> None:
    doc = kubeconfig()
    doc["contexts"][0]["context"]["user"] = "ghost"
    err = raises_config_error(write(tmp_path, doc))
    assert err.key == "contexts[ctx].context.user" and "'ghost'" in err.message
    doc["contexts"][0]["context"]["cluster"] = "nowhere"
    err = raises_config_error(write(tmp_path, doc))
    assert err.key == "contexts[ctx].context.cluster" and "'nowhere'" in err.message


def test_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err = raises_config_error(tmp_path / "absent")
    assert err.source == str(tmp_path / "absent") and "does not exist" in err.message
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "x") + os.pathsep + str(tmp_path / "y"))
    with pytest.raises(ConfigError, match="no kubeconfig file found"):
        Config.from_kubeconfig()


def test_exec_cluster_info_includes_only_set_fields(tmp_path: Path) -> None:
    section = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "x",
        "provideClusterInfo": True,
    }
    config = load(
        tmp_path,
        user={"exec": section},
        cluster={
            "insecure-skip-tls-verify": True,
            "tls-server-name": "k8s",
            "proxy-url": "http://p:1",
        },
    )
    assert isinstance(config.auth, ExecAuth)
    info: Dict[str, Any] = dict(config.auth.spec.cluster or {})
    assert info == {
        "server": "https://10.0.0.1:6443",
        "insecure-skip-tls-verify": True,
        "tls-server-name": "k8s",
        "proxy-url": "http://p:1",
    }


# -- the server URL -----------------------------------------------------------------------


def test_a_password_in_the_server_url_is_refused_naming_file_and_cluster_not_the_password(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, kubeconfig(cluster={"server": "https://admin:hunter2@10.0.0.1:6443"}))
    with pytest.raises(ConfigError, match="user name or password") as caught:
        Config.from_kubeconfig(path)
    assert caught.value.source == path
    assert caught.value.key == "clusters[c1].cluster.server"
    assert "hunter2" not in str(caught.value) and "admin" not in str(caught.value)


def test_a_config_built_by_hand_with_userinfo_in_the_server_is_refused_without_the_password(
) -> None:
    with pytest.raises(ConfigError, match="user name or password") as caught:
        Config(server="https://admin:hunter2@10.0.0.1:6443")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "server, problem",
    [
        ("https://[::1", "not a valid URL"),
        ("https://10.0.0.1:99999", "not a valid URL"),
        ("https://10.0.0.1:api", "not a valid URL"),
        ("https://:6443", "no host"),
        ("https://10.0.0.1:", "no valid port"),
        ("ftp://10.0.0.1", "http"),
        ("https://10.0.0.1?x=1", "query"),
    ],
)
def test_a_broken_server_url_is_a_config_error_naming_file_cluster_and_key(
    tmp_path: Path, server: str, problem: str
) -> None:
    path = write(tmp_path, kubeconfig(cluster={"server": server}))
    with pytest.raises(ConfigError, match=problem) as caught:
        Config.from_kubeconfig(path)
    assert caught.value.source == path
    assert caught.value.key == "clusters[c1].cluster.server"


@pytest.mark.parametrize("server", ["https://[::1]:6443", "http://localhost:8080",
                                    "https://rancher.example/k8s/clusters/c-1"])
def test_ipv6_plain_http_and_path_prefixed_server_urls_load(tmp_path: Path, server: str) -> None:
    assert load(tmp_path, cluster={"server": server}).server == server
