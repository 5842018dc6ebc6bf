"""Server and proxy URLs: checked once when a configuration is built, and shown without secrets."""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

__all__ = ["mask_userinfo", "redact_url", "server_url_problem"]

SERVER_SCHEMES = ("https", "http")
_USERINFO = re.compile(r"(://)[^/@\s]+@")


def mask_userinfo(text: str) -> str:
    """``text`` with the user part of every URL in it replaced by ``***`` (works on text
    that is not a valid URL, such as an error message)."""
    return _USERINFO.sub(r"\1***@", text)


def redact_url(url: Optional[str]) -> Optional[str]:
    """``url`` without a password in its user part (for proxy URLs in reprs and errors)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        password, port = parts.password, parts.port
    except ValueError:
        return mask_userinfo(url)
    if password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def server_url_problem(url: str) -> Optional[str]:
    """What is wrong with an API server URL (as the rest of a sentence), or None.

    The scheme must be http or https, the host present, the port a number in range. A user
    name or password in the URL is refused: it would travel in every log line, error and
    repr that names the server, and the kubeconfig has a place for credentials.
    """
    shown = mask_userinfo(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        return f"is not a valid URL ({exc}): {shown!r}"
    if parts.scheme.lower() not in SERVER_SCHEMES:
        return f"must be an http(s):// URL, not {shown!r}"
    if "@" in parts.netloc:
        return (f"must not hold a user name or password ({shown!r}); put credentials in the "
                "user entry (token, username/password, client certificate)")
    if not parts.hostname:
        return f"has no host: {shown!r}"
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        return f"has no valid port: {shown!r}"
    if parts.query or parts.fragment:
        return f"must not have a query or fragment: {shown!r}"
    return None
