"""The distribution's metadata: its own name, the license it names, the stubs it ships."""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def test_the_distribution_is_not_named_like_the_unrelated_pypi_project() -> None:
    # "kubesync" on PyPI is a different project (a host-to-pod sync tool).
    assert _setup_cfg()["metadata"]["name"] == "kubesync-sdk"


def test_the_license_file_the_metadata_names_exists_and_is_apache_2() -> None:
    meta = _setup_cfg()["metadata"]
    assert meta["license"] == "Apache-2.0"
    text = (ROOT / meta["license_files"].strip()).read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_every_stub_and_py_typed_is_package_data() -> None:
    package_data = _setup_cfg()["options.package_data"]
    patterns = {pkg: package_data[pkg].split() for pkg in package_data}
    wanted = [*ROOT.glob("kubesync/**/*.pyi"), ROOT / "kubesync" / "py.typed"]
    assert len(wanted) > 1
    for path in wanted:
        package = ".".join(path.parent.relative_to(ROOT).parts)
        assert any(fnmatch.fnmatch(path.name, p) for p in patterns.get(package, [])), path
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "LICENSE" in manifest and "*.pyi" in manifest
