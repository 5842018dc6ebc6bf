"""Read kubeconfig files, merge them by kubectl's rules and resolve a context to ``Config`` fields.

Merging (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/):
files are taken in order; the first file to name a cluster, user or context, or to set
``current-context``, wins, and entries are never combined field by field. Relative paths
(and ``~``) are resolved against the folder of the file that holds them. Every problem is a
``ConfigError`` naming the file and the key, e.g. ``users[alice].user.token``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import ssl
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

import attrs
import yaml

from kubesync.config.auth import (
    EXEC_API_VERSIONS,
    INTERACTIVE_MODES,
    Auth,
    BasicAuth,
    ExecAuth,
    ExecSpec,
    Impersonation,
    TokenAuth,
    TokenFileAuth,
)
from kubesync.config.oidc import KubeconfigUserWriter, OidcAuth
from kubesync.config.tls import ClientCert
from kubesync.config.urls import server_url_problem
from kubesync.errors import ConfigError

__all__ = ["check_exec_allowed", "default_paths", "resolve"]

_USER_KEY = re.compile(r"^users\[(.*)\]\.user\.auth-provider$")
EXEC_EXTENSION = "client.authentication.k8s.io/exec"  # the cluster extension passed to plugins
PROXY_SCHEMES = ("http", "https", "socks5")  # those client-go accepts for proxy-url


def default_paths(env: Optional[Mapping[str, str]] = None) -> List[str]:
    """The files ``KUBECONFIG`` lists (minus empty entries and repeats), else ~/.kube/config."""
    env = os.environ if env is None else env
    listed = env.get("KUBECONFIG", "")
    paths: List[str] = []
    for entry in listed.split(os.pathsep):
        if entry and entry not in paths:
            paths.append(entry)
    return paths or [os.path.join(os.path.expanduser("~"), ".kube", "config")]


def resolve(
    paths: Sequence[str],
    *,
    context: Optional[str] = None,
    cluster: Optional[str] = None,
    user: Optional[str] = None,
    skip_missing: bool = False,
    exec_allowlist: Optional[Sequence[str]] = None,
) -> Dict[str, Any]:
    """The ``Config`` keyword arguments for ``context`` (default: ``current-context``) of
    the merged ``paths``: plain data, so this module needs no ``Config``.

    ``exec_allowlist``, when given, names the exec credential plugins the kubeconfig may
    run (see ``check_exec_allowed``); a user whose plugin is not on it is refused.
    """
    files = [f for f in (_File.read(p, skip_missing) for p in paths) if f is not None]
    if not files:
        raise ConfigError("no kubeconfig file found", source=", ".join(paths))
    allow = None if exec_allowlist is None else _allowlist(exec_allowlist)
    return _Merged.of(files).fields(context=context, cluster=cluster, user=user,
                                    exec_allowlist=allow)


def _allowlist(names: Sequence[str]) -> Tuple[str, ...]:
    if isinstance(names, str):
        raise ConfigError(f"exec_allowlist is a list of command names, not one string "
                          f"({names!r})")
    return tuple(names)


def check_exec_allowed(command: str, allowlist: Sequence[str], *, source: str,
                       key: str) -> None:
    """Refuse ``command`` unless ``allowlist`` names it: a bare name (``aws``) allows the
    plugin a kubeconfig names the same way (found on PATH); a path allows exactly that
    file. So a kubeconfig cannot pass off ``/tmp/x/aws`` as ``aws``."""
    if os.sep in command or "/" in command:
        allowed = any(os.path.normpath(os.path.expanduser(a)) == os.path.normpath(command)
                      for a in allowlist if os.sep in a or "/" in a)
    else:
        allowed = command in allowlist
    if not allowed:
        listed = ", ".join(repr(a) for a in allowlist) or "nothing"
        raise ConfigError(
            f"the exec credential plugin {command!r} is not on the allowlist (it allows "
            f"{listed}); add it to exec_allowlist if you trust this kubeconfig",
            source=source, key=key)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


@attrs.define(frozen=True)
class _Section:
    """One mapping of one kubeconfig file, and its key path for error messages."""

    data: Mapping[str, Any]
    file: str
    key: str

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(message, source=self.file, key=self.sub(name))

    def sub(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def _get(self, name: str, kind: Union[Type[Any], Tuple[Type[Any], ...]], what: str) -> Any:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.error(name, f"must be {what}, not {_type_name(value)}")
        return value

    def text(self, name: str) -> Optional[str]:
        return self._get(name, str, "a string") or None

    def flag(self, name: str) -> bool:
        return bool(self._get(name, bool, "a boolean (true or false)"))

    def texts(self, name: str) -> Tuple[str, ...]:
        items = self._get(name, list, "a list of strings") or []
        if not all(isinstance(i, str) for i in items):
            raise self.error(name, "must be a list of strings")
        return tuple(items)

    def section(self, name: str) -> Optional[_Section]:
        value = self._get(name, dict, "a mapping")
        return None if value is None else _Section(value, self.file, self.sub(name))

    def path(self, name: str) -> Optional[str]:
        """A file name, with ``~`` expanded and made absolute from this file's folder."""
        value = self.text(name)
        if value is None:
            return None
        value = os.path.expanduser(value)
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(self.file)), value))

    def read_bytes(self, name: str) -> Optional[bytes]:
        path = self.path(name)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise self.error(name, f"cannot read {path}: {exc.strerror}") from None

    def data_or_file(self, data_name: str, file_name: str) -> Optional[bytes]:
        """``<x>-data`` (base64) if set (it wins, as in kubectl), else the file's bytes."""
        text = self.text(data_name)
        if text is None:
            return self.read_bytes(file_name)
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise self.error(data_name, "is not valid base64") from None


@attrs.define(frozen=True)
class _File:
    """One parsed kubeconfig file: its named entries and current-context."""

    path: str
    current_context: Optional[str]
    clusters: Dict[str, _Section]
    users: Dict[str, _Section]
    contexts: Dict[str, _Section]

    @classmethod
    def read(cls, path: str, skip_missing: bool) -> Optional[_File]:
        path = os.path.expanduser(path)
        try:
            with open(path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            if skip_missing:
                return None
            raise ConfigError("the kubeconfig file does not exist", source=path) from None
        except OSError as exc:
            raise ConfigError(f"cannot read the kubeconfig: {exc.strerror}", source=path) from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ConfigError(f"not valid YAML{where}: {problem}", source=path) from None
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ConfigError(f"must be a YAML mapping, not {_type_name(doc)}", source=path)
        top = _Section(doc, path, "")
        return cls(
            path=path,
            current_context=top.text("current-context"),
            clusters=cls._named(top, "clusters", "cluster"),
            users=cls._named(top, "users", "user"),
            contexts=cls._named(top, "contexts", "context"),
        )

    @staticmethod
    def _named(top: _Section, list_name: str, item_name: str) -> Dict[str, _Section]:
        items = top._get(list_name, list, f"a list of {list_name}") or []
        out: Dict[str, _Section] = {}
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise top.error(f"{list_name}[{i}]", f"must be a mapping, not {_type_name(item)}")
            name = _Section(item, top.file, f"{list_name}[{i}]").text("name")
            if name is None:
                raise top.error(f"{list_name}[{i}].name", "is missing")
            if name in out:
                raise top.error(f"{list_name}[{name}]", "is defined twice in this file")
            entry = _Section(item, top.file, f"{list_name}[{name}]")
            out[name] = entry.section(item_name) or _Section({}, top.file, entry.sub(item_name))
        return out


@attrs.define(frozen=True)
class _Merged:
    """Several kubeconfig files merged: the first to set a key wins."""

    files: Tuple[str, ...]
    current_context: Optional[str]
    clusters: Dict[str, _Section]
    users: Dict[str, _Section]
    contexts: Dict[str, _Section]

    @classmethod
    def of(cls, files: Sequence[_File]) -> _Merged:
        clusters: Dict[str, _Section] = {}
        users: Dict[str, _Section] = {}
        contexts: Dict[str, _Section] = {}
        for f in files:
            for merged, own in ((clusters, f.clusters), (users, f.users), (contexts, f.contexts)):
                for name, section in own.items():
                    merged.setdefault(name, section)
        current = next((f.current_context for f in files if f.current_context), None)
        return cls(tuple(f.path for f in files), current, clusters, users, contexts)

    def fields(
        self, *, context: Optional[str], cluster: Optional[str], user: Optional[str],
        exec_allowlist: Optional[Tuple[str, ...]] = None,
    ) -> Dict[str, Any]:
        sources = ", ".join(self.files)
        ctx_name = context or self.current_context
        if not ctx_name:
            raise ConfigError(
                "no context given and no current-context set",
                source=sources,
                key="current-context",
            )
        ctx = self.contexts.get(ctx_name)
        if ctx is None:
            known = ", ".join(sorted(self.contexts)) or "none"
            raise ConfigError(
                f"context {ctx_name!r} not found (known: {known})",
                source=sources,
                key="contexts" if context else "current-context",
            )
        cluster_name = cluster or ctx.text("cluster")
        if not cluster_name:
            raise ctx.error("cluster", "is missing")
        cl = self.clusters.get(cluster_name)
        if cl is None:
            raise ctx.error("cluster", f"names cluster {cluster_name!r}, which is not defined")
        user_name = user or ctx.text("user")
        us = self.users.get(user_name) if user_name else None
        if user_name and us is None:
            raise ctx.error("user", f"names user {user_name!r}, which is not defined")
        cluster_fields = _cluster_fields(cl)
        client_cert, auth, impersonate = _user_fields(us, cl, cluster_fields, exec_allowlist)
        return dict(
            client_cert=client_cert,
            auth=auth,
            impersonate=impersonate,
            namespace=ctx.text("namespace") or "default",
            context=ctx_name,
            source=ctx.file,
            **cluster_fields,
        )


def _cluster_fields(cl: _Section) -> Dict[str, Any]:
    server = cl.text("server")
    if not server:
        raise cl.error("server", "is missing")
    problem = server_url_problem(server)
    if problem is not None:
        raise cl.error("server", problem)
    ca = cl.data_or_file("certificate-authority-data", "certificate-authority")
    insecure = cl.flag("insecure-skip-tls-verify")
    if insecure and ca is not None:
        raise cl.error(
            "insecure-skip-tls-verify", "cannot be combined with a certificate-authority"
        )
    if ca is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=ca.decode())
        except (ssl.SSLError, ValueError):
            bad = (
                "certificate-authority-data"
                if cl.text("certificate-authority-data")
                else ("certificate-authority")
            )
            raise cl.error(bad, "holds no valid PEM certificate") from None
    proxy = cl.text("proxy-url")
    if proxy and proxy.partition("://")[0].lower() not in PROXY_SCHEMES:
        raise cl.error("proxy-url", f"must use one of the schemes {', '.join(PROXY_SCHEMES)}")
    return {
        "server": server.rstrip("/"),
        "ca_pem": ca,
        "insecure_skip_tls_verify": insecure,
        "tls_server_name": cl.text("tls-server-name"),
        "proxy_url": proxy,
        "disable_compression": cl.flag("disable-compression"),
    }


def _user_fields(
    us: Optional[_Section], cl: _Section, cluster: Mapping[str, Any],
    exec_allowlist: Optional[Tuple[str, ...]] = None,
) -> Tuple[Optional[ClientCert], Optional[Auth], Optional[Impersonation]]:
    if us is None:
        return None, None, None
    cert = us.data_or_file("client-certificate-data", "client-certificate")
    key = us.data_or_file("client-key-data", "client-key")
    if (cert is None) != (key is None):
        missing = "client-key" if key is None else "client-certificate"
        raise us.error(missing, "is missing (a client certificate needs its key, and back)")
    client_cert = ClientCert(cert, key) if cert is not None and key is not None else None
    auth = _auth(us, cl, cluster, client_cert is not None, exec_allowlist)
    return client_cert, auth, _impersonation(us)


def _auth(us: _Section, cl: _Section, cluster: Mapping[str, Any], has_cert: bool,
          exec_allowlist: Optional[Tuple[str, ...]] = None) -> Optional[Auth]:
    token, token_file = us.text("token"), us.path("tokenFile")
    username, password = us.text("username"), us.text("password")
    provider, exec_section = us.section("auth-provider"), us.section("exec")
    if (token or token_file) and (username or password):
        raise us.error("token", "and username/password are both set; only one is allowed")
    if provider is not None and exec_section is not None:
        raise us.error("exec", "and auth-provider are both set; only one is allowed")
    if token_file:
        # client-go: the file's token, once read, takes precedence over `token`.
        return TokenFileAuth(token_file, source=us.file, key=us.sub("tokenFile"))
    if token:
        return TokenAuth(token)
    if username or password:
        return BasicAuth(username or "", password or "")
    if provider is not None:
        return _auth_provider(provider)
    if exec_section is not None and not has_cert:
        # client-go skips the plugin when a static client certificate is set.
        spec = _exec_spec(exec_section, cl, cluster)
        if exec_allowlist is not None:
            check_exec_allowed(spec.command, exec_allowlist, source=exec_section.file,
                               key=exec_section.sub("command"))
        return ExecAuth(spec)
    return None


def _auth_provider(provider: _Section) -> Auth:
    name = provider.text("name")
    if name != "oidc":
        raise provider.error(
            "name",
            f"auth-provider {name!r} is not supported (kubectl dropped the built-in "
            "providers in 1.26); use the provider's exec plugin instead",
        )
    config = provider.section("config")
    if config is None:
        raise provider.error("config", "is missing (the oidc provider needs an id-token)")
    id_token, refresh_token = config.text("id-token"), config.text("refresh-token")
    issuer, client_id = config.text("idp-issuer-url"), config.text("client-id")
    if refresh_token and issuer and client_id:
        user = _USER_KEY.match(provider.key)
        writer = KubeconfigUserWriter(provider.file, user.group(1)) if user else None
        scopes = tuple(s for s in (config.text("extra-scopes") or "").split(",") if s)
        return OidcAuth(
            client_id=client_id, issuer_url=issuer, id_token=id_token,
            refresh_token=refresh_token, client_secret=config.text("client-secret"),
            extra_scopes=scopes,
            ca_pem=config.data_or_file("idp-certificate-authority-data",
                                       "idp-certificate-authority"),
            writer=writer, source=provider.file, key=provider.key,
        )
    if not id_token:
        raise provider.error("config.id-token", "is missing (and without refresh-token, "
                             "idp-issuer-url and client-id it cannot be refreshed)")
    return TokenAuth(id_token)


def _exec_spec(ex: _Section, cl: _Section, cluster: Mapping[str, Any]) -> ExecSpec:
    command = ex.text("command")
    if not command:
        raise ex.error("command", "is missing")
    if os.sep in command or "/" in command:  # a path, not a name looked up on PATH
        command = ex.path("command") or command
    api_version = ex.text("apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        raise ex.error("apiVersion", f"must be one of {', '.join(EXEC_API_VERSIONS)}")
    mode = ex.text("interactiveMode")
    if mode is None:
        if api_version.endswith("/v1"):
            raise ex.error("interactiveMode", f"is required for {api_version}")
        mode = "IfAvailable"
    if mode not in INTERACTIVE_MODES:
        raise ex.error("interactiveMode", f"must be one of {', '.join(INTERACTIVE_MODES)}")
    env: List[Tuple[str, str]] = []
    for i, item in enumerate(ex._get("env", list, "a list of name/value mappings") or []):
        entry = _Section(item if isinstance(item, dict) else {}, ex.file, ex.sub(f"env[{i}]"))
        name, value = entry.text("name"), entry._get("value", str, "a string")
        if not isinstance(item, dict) or not name or value is None:
            raise ex.error(f"env[{i}]", "must be a mapping with a name and a value")
        env.append((name, value))
    return ExecSpec(
        command=command,
        api_version=api_version,
        args=ex.texts("args"),
        env=tuple(env),
        install_hint=ex.text("installHint") or "",
        interactive_mode=mode,
        cluster=_exec_cluster_info(cl, cluster) if ex.flag("provideClusterInfo") else None,
        source=ex.file,
        key=ex.key,
    )


def _exec_cluster_info(cl: _Section, cluster: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``spec.cluster`` of ``KUBERNETES_EXEC_INFO`` (client.authentication.k8s.io)."""
    info: Dict[str, Any] = {"server": cluster["server"]}
    ca = cluster["ca_pem"]
    optional = {
        "tls-server-name": cluster["tls_server_name"],
        "insecure-skip-tls-verify": cluster["insecure_skip_tls_verify"],
        "certificate-authority-data": base64.b64encode(ca).decode() if ca else None,
        "proxy-url": cluster["proxy_url"],
        "disable-compression": cluster["disable_compression"],
    }
    info.update({k: v for k, v in optional.items() if v})
    for i, ext in enumerate(cl._get("extensions", list, "a list of named extensions") or []):
        if isinstance(ext, dict) and ext.get("name") == EXEC_EXTENSION:
            info["config"] = ext.get("extension")
        elif not isinstance(ext, dict):
            raise cl.error(f"extensions[{i}]", "must be a mapping")
    return info


def _impersonation(us: _Section) -> Optional[Impersonation]:
    extra_section = us.section("as-user-extra")
    extra: Dict[str, Tuple[str, ...]] = {}
    if extra_section is not None:
        for key in extra_section.data:
            extra[str(key)] = extra_section.texts(str(key))
    imp = Impersonation(
        user=us.text("as"), uid=us.text("as-uid"), groups=us.texts("as-groups"), extra=extra
    )
    return imp if imp != Impersonation() else None
