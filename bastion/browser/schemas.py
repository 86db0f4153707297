"""Typed contracts of the browser-tests API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field

from bastion.browser.models import BrowserRun, Environment, StoredTest, Suite

MAX_DEFINITION = 1024 * 1024


class TestIn(Schema):
    slug: str = Field("", max_length=60, description="Default: from the test's name.")
    definition: dict[str, Any] | None = Field(
        None, description="The test as a JSON object (the YAML format's structure)."
    )
    yaml: str | None = Field(
        None, max_length=MAX_DEFINITION, description="The test as YAML (or JSON) text."
    )


class TestOut(Schema):
    slug: str
    name: str
    version: int
    import_only: bool
    steps: int
    updated_at: datetime

    @classmethod
    def of(cls, test: StoredTest) -> TestOut:
        steps = test.definition.get("steps") if isinstance(test.definition, dict) else None
        return cls(
            slug=test.slug,
            name=test.name,
            version=test.version,
            import_only=test.import_only,
            steps=len(steps) if isinstance(steps, list) else 0,
            updated_at=test.updated_at,
        )


class HistoryOut(Schema):
    runs: int
    passed: int
    pass_rate: float | None
    flaky: bool


class TestDetailOut(TestOut):
    definition: dict[str, Any]
    yaml: str
    history: HistoryOut


class SuiteIn(Schema):
    slug: str = Field(..., max_length=60)
    name: str = Field("", max_length=200)
    tests: list[str] = Field(default_factory=list, max_length=500)
    concurrency: int = Field(1, ge=1, le=8)
    variables: dict[str, str] = Field(default_factory=dict)


class SuiteOut(Schema):
    slug: str
    name: str
    tests: list[str]
    concurrency: int
    variables: list[str]

    @classmethod
    def of(cls, suite: Suite) -> SuiteOut:
        return cls(
            slug=suite.slug,
            name=suite.name,
            tests=[entry.test.slug for entry in suite.entries.select_related("test")],
            concurrency=suite.concurrency,
            variables=sorted(suite.variables),
        )


class EnvironmentIn(Schema):
    slug: str = Field(..., min_length=1, max_length=60)
    name: str = Field("", max_length=200)
    base_url: str = Field(..., max_length=500)
    variables: dict[str, str] = Field(default_factory=dict)


class EnvironmentOut(Schema):
    slug: str
    name: str
    base_url: str
    # Names only: values may be sensitive.
    variables: list[str]

    @classmethod
    def of(cls, environment: Environment) -> EnvironmentOut:
        return cls(
            slug=environment.slug,
            name=environment.name,
            base_url=environment.base_url,
            variables=sorted(environment.variables),
        )


class RunIn(Schema):
    test: str | None = Field(None, max_length=60)
    suite: str | None = Field(None, max_length=60)
    environment: str | None = Field(None, max_length=60)
    cluster: str | None = Field(None, max_length=50)
    concurrency: int | None = Field(None, ge=1, le=8)
    video: bool = True


class RunOut(Schema):
    id: int
    status: str
    test: str | None
    suite: str | None
    environment: str | None
    jobs: list[int]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    results: list[dict[str, Any]]

    @classmethod
    def of(cls, run: BrowserRun, jobs: list[int], results: bool = True) -> RunOut:
        return cls(
            id=run.pk,
            status=run.status,
            test=run.test.slug if run.test else None,
            suite=run.suite.slug if run.suite else None,
            environment=run.environment.slug if run.environment else None,
            jobs=jobs,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            results=list(run.results) if results else [],
        )
