"""The build backend of agent-status-updater: standard library only, so ``pip install`` works from the
repository path or a built wheel on a host with no network and no setuptools or wheel packages.

It implements the PEP 517 hooks pip calls: a pure-Python wheel holding the one module, and an sdist.
Name, version, summary and Python requirement come from pyproject.toml's [project] table.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = "agent_status_updater.py"
SDIST_FILES = ["pyproject.toml", MODULE, "build_backend/__init__.py"]


def _project():
    """The [project] table's simple string fields (tomllib is not in Python 3.8 to 3.10)."""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    table = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S).group(1)
    return dict(re.findall(r'^(\w[\w-]*)\s*=\s*"([^"]*)"\s*$', table, re.M))


def _metadata():
    p = _project()
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {p['name']}\n"
        f"Version: {p['version']}\n"
        f"Summary: {p['description']}\n"
        f"Requires-Python: {p['requires-python']}\n"
    )


def _dist_name():
    p = _project()
    return f"{p['name'].replace('-', '_')}-{p['version']}"


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = _dist_name()
    dist_info = f"{name}.dist-info"
    with open(os.path.join(ROOT, MODULE), "rb") as f:
        module = f.read()
    files = {
        MODULE: module,
        f"{dist_info}/METADATA": _metadata().encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: agent-status build_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_digest(data)},{len(data)}\n" for path, data in files.items()) + f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    filename = f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    name = _dist_name()
    filename = f"{name}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as sdist:
        for path in SDIST_FILES:
            sdist.add(os.path.join(ROOT, path), arcname=f"{name}/{path}")
        info = _metadata().encode()
        member = tarfile.TarInfo(f"{name}/PKG-INFO")
        member.size = len(info)
        sdist.addfile(member, io.BytesIO(info))
    return filename
