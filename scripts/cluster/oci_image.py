#!/usr/bin/env python3
"""Write the test node's container images as OCI image-layout tarballs.

Nothing can be pulled from a registry on our machines, so the local cluster's node runs
images made here from local files: a busybox image (Debian's busybox-static, every applet
linked) for test pods, and the pod sandbox image around our own ``pause`` command.
``ctr images import`` loads the tarballs into the node's containerd at cluster start.

The output is byte-reproducible: fixed mtimes and owners, sorted entries.

    oci_image.py busybox OUT.tar [--busybox /bin/busybox]
    oci_image.py pause OUT.tar --binary PATH
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from typing import Any, Dict, List, Tuple

#: The names the cluster's pods use; kubesync.testing.TEST_IMAGE and PAUSE_IMAGE repeat them.
BUSYBOX_REF = "kubesync.local/busybox:1"
PAUSE_REF = "kubesync.local/pause:1"

_MTIME = 1_700_000_000  # fixed, so the layer digest only changes when the content does
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class _Layer:
    """An uncompressed layer tarball built in memory, entries added in a fixed order."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, _MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    def dir(self, name: str, mode: int = 0o755) -> None:
        self._tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self._tar.addfile(info)

    def close(self) -> bytes:
        self._tar.close()
        return self._buf.getvalue()


def _blob(data: bytes) -> Tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def write_image(out: str, ref: str, layer: bytes, config: Dict[str, Any]) -> str:
    """Write an OCI image layout tarball holding one single-layer image named ``ref``."""
    layer_digest, _ = _blob(layer)
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }
    config_digest, config_bytes = _blob(json.dumps(image_config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": len(layer),
        }],
    }
    manifest_digest, manifest_bytes = _blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "io.containerd.image.name": ref,
                "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1],
            },
        }],
    }
    outer = _Layer()
    outer.file("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    outer.file("index.json", json.dumps(index, sort_keys=True).encode())
    outer.dir("blobs")
    outer.dir("blobs/sha256")
    blobs: List[Tuple[str, bytes]] = [
        (layer_digest, layer), (config_digest, config_bytes), (manifest_digest, manifest_bytes),
    ]
    for digest, data in sorted(blobs):
        outer.file("blobs/sha256/" + digest.split(":", 1)[1], data)
    with open(out, "wb") as f:
        f.write(outer.close())
    return manifest_digest


def busybox_layer(busybox: str) -> bytes:
    applets = subprocess.run(
        [busybox, "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    with open(busybox, "rb") as f:
        binary = f.read()
    layer = _Layer()
    for d in ("bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "usr", "usr/bin",
              "usr/sbin", "var", "var/www"):
        layer.dir(d, 0o700 if d == "root" else 0o755)
    layer.dir("tmp", 0o1777)
    layer.file("bin/busybox", binary, 0o755)
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                             b"nobody:x:65534:65534:nobody:/home:/bin/false\n")
    layer.file("etc/group", b"root:x:0:\nnobody:x:65534:\n")
    for path in sorted(set(applets)):
        if path == "bin/busybox":
            continue
        layer.symlink(path, "/bin/busybox")
    return layer.close()


def pause_layer(binary: str) -> bytes:
    with open(binary, "rb") as f:
        data = f.read()
    layer = _Layer()
    layer.file("pause", data, 0o755)
    return layer.close()


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", choices=["busybox", "pause"])
    parser.add_argument("out")
    parser.add_argument("--busybox", default="/bin/busybox")
    parser.add_argument("--binary", help="the pause command (for the pause image)")
    args = parser.parse_args(argv)
    if args.image == "busybox":
        digest = write_image(
            args.out, BUSYBOX_REF, busybox_layer(args.busybox),
            {"Env": [_PATH], "Cmd": ["sh"], "WorkingDir": "/"},
        )
    else:
        if not args.binary:
            parser.error("the pause image needs --binary")
        digest = write_image(
            args.out, PAUSE_REF, pause_layer(args.binary),
            {"Env": [_PATH], "Entrypoint": ["/pause"], "User": "65535:65535"},
        )
    print(f"{args.out}: {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
