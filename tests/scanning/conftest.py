"""Lab fixtures: real HTTP(S) servers on 127.0.0.1, certificates made at test time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bastion.scanning.engine.context import ScanOptions
from bastion.scanning.engine.runner import ScanResult, scan
from tests.agent.conftest import agents, fast_intervals  # noqa: F401 - real agent processes
from tests.labs import clean, vulnerable
from tests.labs.certs import LabCA, server_context
from tests.labs.server import serve

LABS = Path(__file__).resolve().parents[1] / "labs"


@pytest.fixture(scope="session")
def vulnerable_lab() -> Iterator[str]:
    with serve(vulnerable.app) as base:
        yield base


@pytest.fixture(scope="session")
def lab_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabCA, Path]:
    ca = LabCA()
    return ca, ca.write(tmp_path_factory.mktemp("ca"))


@dataclass(frozen=True)
class CleanLab:
    https: str
    http_port: int
    ca_file: Path


@pytest.fixture(scope="session")
def clean_lab(lab_ca: tuple[LabCA, Path]) -> Iterator[CleanLab]:
    ca, ca_file = lab_ca
    with serve(clean.app, tls=server_context(ca.leaf())) as https_base:
        with serve(clean.redirector(https_base)) as http_base:  # type: ignore[arg-type]
            port = int(http_base.rstrip("/").rsplit(":", 1)[1])
            yield CleanLab(https_base, port, ca_file)


def run(target: str, **options: Any) -> ScanResult:
    return scan(ScanOptions(target=target, **options))


def normalized(result: ScanResult, base: str) -> set[tuple[str, str, str | None]]:
    out = set()
    for f in result.findings:
        url = "/" + f.url[len(base) :] if f.url.startswith(base) else f.url
        out.add((f.type, url, f.parameter))
    return out


def ground_truth(name: str) -> set[tuple[str, str, str | None]]:
    data = json.loads((LABS / f"{name}.truth.json").read_text())
    return {(f["type"], f["url"], f["parameter"]) for f in data["findings"]}
