"""Named actions and scoped reads for stored browser tests, environments and baselines.

Every read goes through a ``*_for(principal, ...)`` helper (another organization's objects are
404, a too-low role is 403); every write validates first, runs in one transaction and writes
its audit row.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image, UnidentifiedImageError

from bastion.browser.models import (
    Baseline,
    BrowserRun,
    Environment,
    StoredTest,
    Suite,
    SuiteTest,
)
from bastion.browser.spec import (
    BrowserTest,
    ModuleNotFound,
    ModuleResolver,
    SpecError,
    browser_test_to_dict,
    check_modules,
    load_test,
)
from bastion.browser.spec.modules import affected_by
from bastion.core import audit
from bastion.core.access import Principal, projects_for, require_role
from bastion.core.models import Project, Role

if TYPE_CHECKING:
    from bastion.browser.diff import DiffResult, Region

MAX_BASELINE_BYTES = 20 * 1024 * 1024
MAX_SUITE_CONCURRENCY = 8


# -- reads --------------------------------------------------------------------------------
def tests_for(principal: Principal, project: Project) -> QuerySet[StoredTest]:
    require_role(principal, project.organization, Role.VIEWER)
    return StoredTest.objects.filter(project=project, project__in=projects_for(principal))


def get_test_for(
    principal: Principal, project: Project, slug: str, minimum: str = Role.VIEWER
) -> StoredTest:
    test = StoredTest.objects.filter(
        project=project, project__in=projects_for(principal), slug=slug
    ).first()
    if test is None:
        raise Http404("No such browser test.")
    require_role(principal, project.organization, minimum)
    return test


def environments_for(principal: Principal, project: Project) -> QuerySet[Environment]:
    require_role(principal, project.organization, Role.VIEWER)
    return Environment.objects.filter(project=project, project__in=projects_for(principal))


def runs_for(principal: Principal, project: Project) -> QuerySet[BrowserRun]:
    require_role(principal, project.organization, Role.VIEWER)
    return BrowserRun.objects.filter(project=project, project__in=projects_for(principal))


def baselines_for(principal: Principal, test: StoredTest) -> QuerySet[Baseline]:
    require_role(principal, test.project.organization, Role.VIEWER)
    return Baseline.objects.filter(test=test, test__project__in=projects_for(principal))


def project_modules(project: Project) -> ModuleResolver:
    """Modules are the project's tests, named by slug."""

    def resolve(name: str) -> BrowserTest:
        stored = StoredTest.objects.filter(project=project, slug=name.removesuffix(".yaml")).first()
        if stored is None:
            raise ModuleNotFound(f"module {name!r} is not a test of project {project.slug}")
        return load_test(stored.definition, default_name=stored.slug)

    return resolve


def tests_using_module(principal: Principal, module: StoredTest) -> list[StoredTest]:
    """The tests that import ``module``, directly or through other modules: what to re-run
    after changing it."""
    tests = {t.slug: t for t in tests_for(principal, module.project)}
    parsed = {slug: load_test(t.definition, default_name=slug) for slug, t in tests.items()}
    return [tests[slug] for slug in affected_by(module.slug, parsed)]


# -- actions ------------------------------------------------------------------------------
def _validated(definition: Mapping[str, Any], project: Project, slug: str) -> BrowserTest:
    try:
        test = load_test(dict(definition))
        resolve = project_modules(project)

        def with_self(name: str) -> BrowserTest:
            # The test being saved is checked in its new form (a cycle through itself).
            return test if name.removesuffix(".yaml") == slug else resolve(name)

        check_modules(test, with_self)
    except SpecError as exc:
        raise ValidationError({"definition": [str(problem) for problem in exc.problems]}) from exc
    return test


def save_test(
    principal: Principal,
    project: Project,
    definition: Mapping[str, Any],
    slug: str = "",
    details: Mapping[str, Any] | None = None,
) -> StoredTest:
    """Create the test ``slug`` (default: from its name) or replace its definition;
    ``details`` (what the editor changed) go into the audit row."""
    require_role(principal, project.organization, Role.MEMBER)
    name = definition.get("name") if isinstance(definition, Mapping) else None
    slug = slug or slugify(str(name or ""))[:60]
    if not slug:
        raise ValidationError({"slug": ["A test needs a slug or a name."]})
    test = _validated(definition, project, slug)
    stored_definition = browser_test_to_dict(test)
    with transaction.atomic():
        stored = StoredTest.objects.select_for_update().filter(project=project, slug=slug).first()
        if stored is None:
            stored = StoredTest.objects.create(
                project=project,
                slug=slug,
                name=test.name,
                definition=stored_definition,
                import_only=test.import_only,
                created_by=principal.user,
            )
            action = "browser.test.create"
        else:
            stored.name = test.name
            stored.definition = stored_definition
            stored.import_only = test.import_only
            stored.version += 1
            stored.updated_at = timezone.now()
            stored.save()
            action = "browser.test.update"
        audit.record(
            principal.actor,
            action,
            organization=project.organization,
            target=stored,
            changes={
                "slug": slug,
                "version": stored.version,
                "steps": len(test.steps),
                **(details or {}),
            },
        )
    return stored


def create_environment(
    principal: Principal,
    project: Project,
    *,
    slug: str,
    name: str,
    base_url: str,
    variables: Mapping[str, str] | None = None,
) -> Environment:
    require_role(principal, project.organization, Role.ADMIN)
    if not base_url.startswith(("http://", "https://")):
        raise ValidationError({"base_url": ["Must be an http:// or https:// URL."]})
    if Environment.objects.filter(project=project, slug=slug).exists():
        raise ValidationError({"slug": ["An environment with that slug already exists here."]})
    with transaction.atomic():
        environment = Environment.objects.create(
            project=project,
            slug=slug,
            name=name or slug,
            base_url=base_url,
            variables=dict(variables or {}),
        )
        # Variable values may be sensitive: the audit row names them only.
        audit.record(
            principal.actor,
            "browser.environment.create",
            organization=project.organization,
            target=environment,
            changes={
                "slug": slug,
                "base_url": base_url,
                "variables": sorted(environment.variables),
            },
        )
    return environment


def accept_baseline(
    principal: Principal,
    test: StoredTest,
    png: bytes,
    *,
    name: str = "final",
    environment: Environment | None = None,
    run: BrowserRun | None = None,
) -> Baseline:
    """Make ``png`` the baseline for test x environment x its size x name (one click, audited)."""
    require_role(principal, test.project.organization, Role.MEMBER)
    if environment is not None and environment.project_id != test.project_id:
        raise ValidationError({"environment": ["The environment belongs to another project."]})
    if len(png) > MAX_BASELINE_BYTES:
        raise ValidationError({"image": ["The screenshot is too large."]})
    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.format != "PNG":
                raise ValidationError({"image": ["The screenshot must be a PNG."]})
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ValidationError({"image": ["The screenshot is not a readable image."]}) from exc
    digest = hashlib.sha256(png).hexdigest()
    path = default_storage.save(
        f"browser/baselines/{test.project_id}/{test.pk}/{digest}.png", ContentFile(png)
    )
    with transaction.atomic():
        previous = (
            Baseline.objects.select_for_update()
            .filter(
                test=test,
                environment=environment,
                name=name,
                viewport_width=width,
                viewport_height=height,
            )
            .first()
        )
        before = previous.sha256 if previous is not None else ""
        if previous is not None:
            previous.delete()
        baseline = Baseline.objects.create(
            test=test,
            environment=environment,
            name=name,
            viewport_width=width,
            viewport_height=height,
            image=path,
            sha256=digest,
            accepted_by=principal.user,
            run=run,
        )
        audit.record(
            principal.actor,
            "browser.baseline.accept",
            organization=test.project.organization,
            target=baseline,
            changes={
                "test": test.slug,
                "name": name,
                "size": f"{width}x{height}",
                "sha256": [before, digest],
            },
        )
    return baseline


def compare_with_baseline(
    baseline: Baseline,
    png: bytes,
    *,
    tolerance_pct: float = 0.5,
    threshold: float = 0.1,
    exclude: Sequence[Region] = (),
) -> DiffResult:
    from bastion.browser.diff import compare  # numpy: only where images are compared

    with default_storage.open(baseline.image, "rb") as handle:
        stored = handle.read()
    return compare(stored, png, tolerance_pct=tolerance_pct, threshold=threshold, exclude=exclude)


def delete_test(principal: Principal, test: StoredTest) -> None:
    require_role(principal, test.project.organization, Role.MEMBER)
    with transaction.atomic():
        audit.record(
            principal.actor,
            "browser.test.delete",
            organization=test.project.organization,
            target=test,
            changes={"slug": test.slug, "version": test.version},
        )
        test.delete()


def suites_for(principal: Principal, project: Project) -> QuerySet[Suite]:
    require_role(principal, project.organization, Role.VIEWER)
    return Suite.objects.filter(project=project, project__in=projects_for(principal))


def get_suite_for(
    principal: Principal, project: Project, slug: str, minimum: str = Role.VIEWER
) -> Suite:
    suite = suites_for(principal, project).filter(slug=slug).first()
    if suite is None:
        raise Http404("No such suite.")
    require_role(principal, project.organization, minimum)
    return suite


def get_environment_for(principal: Principal, project: Project, slug: str) -> Environment:
    environment = environments_for(principal, project).filter(slug=slug).first()
    if environment is None:
        raise Http404("No such environment.")
    return environment


def create_suite(
    principal: Principal,
    project: Project,
    *,
    slug: str,
    name: str = "",
    tests: Sequence[str] = (),
    concurrency: int = 1,
    variables: Mapping[str, str] | None = None,
) -> Suite:
    """A suite of the project's tests, in the given order (audited)."""
    require_role(principal, project.organization, Role.MEMBER)
    errors: dict[str, list[str]] = {}
    if not slug or slugify(slug) != slug or len(slug) > 60:
        errors["slug"] = ["Use lower-case letters, digits and dashes (at most 60)."]
    elif Suite.objects.filter(project=project, slug=slug).exists():
        errors["slug"] = ["A suite with that slug already exists here."]
    if not 1 <= concurrency <= MAX_SUITE_CONCURRENCY:
        errors["concurrency"] = [f"Concurrency must be 1..{MAX_SUITE_CONCURRENCY}."]
    found = {t.slug: t for t in StoredTest.objects.filter(project=project, slug__in=list(tests))}
    missing = [name for name in tests if name not in found]
    if missing:
        errors["tests"] = [f"No such test: {name}" for name in missing]
    if len(set(tests)) != len(tests):
        errors.setdefault("tests", []).append("A test can be in a suite once.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        suite = Suite.objects.create(
            project=project,
            slug=slug,
            name=name or slug,
            concurrency=concurrency,
            variables=dict(variables or {}),
        )
        SuiteTest.objects.bulk_create(
            SuiteTest(suite=suite, test=found[name], position=i) for i, name in enumerate(tests)
        )
        audit.record(
            principal.actor,
            "browser.suite.create",
            organization=project.organization,
            target=suite,
            changes={"slug": slug, "tests": list(tests), "concurrency": concurrency},
        )
    return suite


def diff_image(baseline: Baseline, png: bytes, *, threshold: float = 0.1) -> bytes:
    """The diff view: the baseline faded, the pixels ``png`` changes in red (PNG bytes)."""
    from bastion.browser.diff import compare  # numpy: only where images are compared

    with default_storage.open(baseline.image, "rb") as handle:
        stored = handle.read()
    with tempfile.TemporaryDirectory(prefix="bastion-diff-") as folder:
        path = Path(folder) / "diff.png"
        compare(stored, png, threshold=threshold, diff_path=path)
        return path.read_bytes()
