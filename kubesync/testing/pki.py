"""The local cluster's PKI: a CA, a serving cert, client certs and service-account keys.

Made with the ``openssl`` command (Debian's ``openssl`` package) so that kubesync needs no
crypto library at run time. Keys are written 0600 into the cluster's private folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional, Sequence

import attrs

from kubesync.errors import KubeError

#: Certificates only need to outlive a test run.
_DAYS = "30"


@attrs.frozen
class CertPair:
    cert: Path
    key: Path


@attrs.frozen
class Pki:
    ca: CertPair
    serving: CertPair
    admin: CertPair
    sa_key: Path
    sa_pub: Path
    #: The node's kubelet (``system:node:<name>`` in ``system:nodes``), when there is a node.
    kubelet: Optional[CertPair] = None
    #: The apiserver's client certificate towards kubelets (logs, exec, port-forward).
    kubelet_client: Optional[CertPair] = None


def _openssl(args: Sequence[str], cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise KubeError(
            "the local test cluster needs the `openssl` command (apt-get install openssl)"
        )
    proc = subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise KubeError(
            f"openssl {args[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
        )


def _key(path: Path) -> None:
    old = os.umask(0o077)
    try:
        _openssl(["genrsa", "-out", str(path), "2048"], path.parent)
    finally:
        os.umask(old)
    path.chmod(0o600)


def _signed(
    folder: Path,
    name: str,
    subject: str,
    ca: CertPair,
    *,
    ext: List[str],
) -> CertPair:
    key = folder / f"{name}.key"
    csr = folder / f"{name}.csr"
    crt = folder / f"{name}.crt"
    extfile = folder / f"{name}.ext"
    _key(key)
    _openssl(["req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr)], folder)
    extfile.write_text("\n".join(ext) + "\n")
    _openssl(
        [
            "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
            "-CAcreateserial", "-days", _DAYS, "-sha256", "-extfile", str(extfile),
            "-out", str(crt),
        ],
        folder,
    )
    csr.unlink()
    extfile.unlink()
    return CertPair(crt, key)


def make_ca(folder: Path, name: str = "ca", cn: str = "kubesync-local-ca") -> CertPair:
    """A self-signed CA (``NAME.crt``, ``NAME.key``) in ``folder``."""
    ca_key = folder / f"{name}.key"
    ca_crt = folder / f"{name}.crt"
    _key(ca_key)
    _openssl(
        [
            "req", "-x509", "-new", "-key", str(ca_key), "-subj", f"/CN={cn}",
            "-days", _DAYS, "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(ca_crt),
        ],
        folder,
    )
    return CertPair(ca_crt, ca_key)


def make_serving_cert(folder: Path, name: str, ca: CertPair, sans: Sequence[str],
                      cn: Optional[str] = None) -> CertPair:
    """A TLS server certificate signed by ``ca`` for ``sans`` (``IP:127.0.0.1``,
    ``DNS:svc.ns.svc``), e.g. for a webhook the API server calls."""
    return _signed(
        folder, name, f"/CN={cn or name}", ca,
        ext=["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
             "extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(sans)],
    )


def make_pki(
    folder: Path,
    *,
    extra_sans: Optional[Sequence[str]] = None,
    node_name: Optional[str] = None,
) -> Pki:
    """Generate the whole PKI into ``folder`` (which must exist and be private).

    With ``node_name`` it also makes the node's kubelet certificate and the apiserver's
    client certificate for talking to that kubelet.
    """
    ca = make_ca(folder)
    sans = ["IP:127.0.0.1", "DNS:localhost", "IP:10.0.0.1", "DNS:kubernetes",
            "DNS:kubernetes.default", "DNS:kubernetes.default.svc"]
    sans += list(extra_sans or ())
    serving = make_serving_cert(folder, "apiserver", ca, sans, cn="kube-apiserver")
    admin = _signed(
        folder, "admin", "/O=system:masters/CN=kubesync-admin", ca,
        ext=["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
             "extendedKeyUsage=clientAuth"],
    )
    sa_key = folder / "sa.key"
    sa_pub = folder / "sa.pub"
    _key(sa_key)
    _openssl(["rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub)], folder)
    kubelet = kubelet_client = None
    if node_name:
        client_ext = ["basicConstraints=CA:FALSE",
                      "keyUsage=critical,digitalSignature,keyEncipherment",
                      "extendedKeyUsage=clientAuth"]
        # The Node authorizer and NodeRestriction admission know a kubelet by this name.
        kubelet = _signed(folder, "kubelet", f"/O=system:nodes/CN=system:node:{node_name}",
                          ca, ext=client_ext)
        kubelet_client = _signed(folder, "apiserver-kubelet-client",
                                 "/O=system:masters/CN=kube-apiserver-kubelet-client",
                                 ca, ext=client_ext)
    return Pki(ca=ca, serving=serving, admin=admin, sa_key=sa_key, sa_pub=sa_pub,
               kubelet=kubelet, kubelet_client=kubelet_client)
