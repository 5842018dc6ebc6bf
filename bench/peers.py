"""The peers a user would pick instead of kubesync, built from the same kubeconfig.

Each builder returns ``(client, None)`` or ``(None, reason)`` when the package is missing,
so a workload lists that peer as n/a instead of failing.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from bench.env import Env

Built = Tuple[Any, Optional[str]]

OFFICIAL, LIGHTKUBE, KR8S = "kubernetes", "lightkube", "kr8s"
INSTALL_HINT = "not installed (pip install -e '.[bench]')"


def official_api(env: Env) -> Built:
    """The official client's CoreV1Api for the kubeconfig."""
    try:
        import kubernetes
    except ImportError:
        return None, f"kubernetes {INSTALL_HINT}"
    api_client = kubernetes.config.new_client_from_config(config_file=env.kubeconfig)
    return kubernetes.client.CoreV1Api(api_client), None


def lightkube_client(env: Env) -> Built:
    """A lightkube Client; ``trust_env=False`` so SSL_CERT_FILE & co. change nothing."""
    try:
        import lightkube
    except ImportError:
        return None, f"lightkube {INSTALL_HINT}"
    config = lightkube.KubeConfig.from_file(env.kubeconfig)
    return lightkube.Client(config, trust_env=False), None


def kr8s_api(env: Env) -> Built:
    """kr8s's synchronous Api (``kr8s.api()``; it wraps the asyncio one)."""
    try:
        import kr8s
    except ImportError:
        return None, f"kr8s {INSTALL_HINT}"
    return kr8s.api(kubeconfig=env.kubeconfig), None


def version_of(dist: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None
