"""The normalized pipeline: typed, frozen steps with every dependency made explicit.

``needs`` on each step lists the steps it waits for (explicit ``depends_on``, or the implicit
barrier of the last ``wait``/``block`` before it, or its group's), by internal key. Internal keys
are the user's ``key`` when given, else ``step-N`` by position.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from bastion.pipelines.yaml.expressions import Condition, branch_matches


@dataclass(frozen=True)
class Dependency:
    key: str
    allow_failure: bool = False


@dataclass(frozen=True)
class RetryRule:
    """``exit_statuses`` None means any (``"*"``); -1 is the exit status of a lost agent."""

    exit_statuses: tuple[int, ...] | None
    signal_reason: str | None
    signal: str | None
    limit: int

    def matches(self, exit_status: int | None, signal_reason: str, signal: str = "") -> bool:
        if self.exit_statuses is not None and exit_status not in self.exit_statuses:
            return False
        if self.signal_reason not in (None, "*"):
            wanted = "" if self.signal_reason == "none" else self.signal_reason
            if signal_reason != wanted:
                return False
        if self.signal not in (None, "*"):
            wanted = "" if self.signal == "none" else (self.signal or "").upper()
            if signal.upper() != wanted and f"SIG{signal.upper()}" != wanted:
                return False
        return True


@dataclass(frozen=True)
class ManualRetry:
    allowed: bool = True
    permit_on_passed: bool = False
    reason: str = ""


@dataclass(frozen=True)
class SoftFail:
    """``any`` for ``soft_fail: true``; otherwise the exit statuses that are soft failures."""

    any: bool = False
    exit_statuses: tuple[int, ...] = ()

    def matches(self, exit_status: int | None) -> bool:
        return self.any or (exit_status is not None and exit_status in self.exit_statuses)


NO_SOFT_FAIL = SoftFail()


@dataclass(frozen=True)
class MatrixAdjustment:
    with_: tuple[tuple[str, str], ...]
    skip: bool
    soft_fail: SoftFail | None


@dataclass(frozen=True)
class Matrix:
    """Dimensions by name; the single-list form has one dimension named ``""`` (``{{matrix}}``)."""

    dimensions: tuple[tuple[str, tuple[str, ...]], ...]
    adjustments: tuple[MatrixAdjustment, ...] = ()

    def size(self) -> int:
        """How many combinations the setup makes (before adjustments), without making them."""
        total = 1
        for _, values in self.dimensions:
            total *= max(1, len(values))
        return total + len(self.adjustments)

    def combinations(self) -> list[tuple[dict[str, str], SoftFail | None]]:
        """Every combination to run, with its soft_fail override; skipped ones are left out."""
        names = [name for name, _ in self.dimensions]
        combos = [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(values for _, values in self.dimensions))
        ]
        for adjustment in self.adjustments:
            extra = dict(adjustment.with_)
            if extra not in combos and not adjustment.skip:
                combos.append(extra)
        result: list[tuple[dict[str, str], SoftFail | None]] = []
        for combo in combos:
            found = next((a for a in self.adjustments if dict(a.with_) == combo), None)
            if found is not None and found.skip:
                continue
            result.append((combo, found.soft_fail if found is not None else None))
        return result


@dataclass(frozen=True)
class StepBase:
    key: str
    label: str
    needs: tuple[Dependency, ...]
    allow_dependency_failure: bool = False
    condition: Condition | None = None
    branches: tuple[str, ...] = ()
    group: str | None = None
    user_key: str | None = None
    notify: tuple[Notification, ...] = ()

    @property
    def type(self) -> str:
        raise NotImplementedError

    def runs_for(self, context: dict[str, Any]) -> bool:
        """Whether the step is part of a build with this ``if`` context (branch, commit, ...)."""
        if self.branches and not branch_matches(self.branches, str(context.get("build.branch"))):
            return False
        return self.condition is None or self.condition.evaluate(context)


@dataclass(frozen=True)
class StepSignature:
    """A command step's ``signature`` block (``bastion.pipelines.signing``): the value, the
    fields it covers, and the signed agents rules and repository the agent checks."""

    value: str
    fields: tuple[str, ...] = ()
    agents: dict[str, str] = field(default_factory=dict)
    repository_url: str = ""


@dataclass(frozen=True)
class CommandStep(StepBase):
    command: str = ""
    env: dict[str, str] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    timeout_in_minutes: int | None = None
    retry_automatic: tuple[RetryRule, ...] = ()
    retry_manual: ManualRetry = ManualRetry()
    soft_fail: SoftFail = NO_SOFT_FAIL
    parallelism: int | None = None
    matrix: Matrix | None = None
    artifact_paths: tuple[str, ...] = ()
    concurrency: int | None = None
    concurrency_group: str | None = None
    priority: int | None = None
    skip: str | None = None
    cancel_on_build_failing: bool = False
    # Cluster secrets put in the job's env: (env var, secret name) pairs (``secrets:``).
    secrets: tuple[tuple[str, str], ...] = ()
    plugins: tuple[str, ...] = ()
    # The step's signature (``bastion.pipelines.signing``), checked by agents that verify.
    signature: StepSignature | None = None

    @property
    def type(self) -> str:
        return "command"


@dataclass(frozen=True)
class WaitStep(StepBase):
    continue_on_failure: bool = False

    @property
    def type(self) -> str:
        return "wait"


@dataclass(frozen=True)
class TextField:
    key: str
    text: str
    hint: str = ""
    required: bool = True
    default: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class SelectOption:
    label: str
    value: str


@dataclass(frozen=True)
class SelectField:
    key: str
    select: str
    options: tuple[SelectOption, ...]
    hint: str = ""
    required: bool = True
    multiple: bool = False
    default: tuple[str, ...] = ()


Field = TextField | SelectField


@dataclass(frozen=True)
class BlockStep(StepBase):
    """``block`` (a barrier) or ``input`` (``blocking=False``: no implicit dependencies)."""

    prompt: str = ""
    fields: tuple[Field, ...] = ()
    blocking: bool = True
    # Who may unblock it: organization roles (yaml/attributes.py unblock_role).
    allowed_teams: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        return "block" if self.blocking else "input"


@dataclass(frozen=True)
class TriggerBuild:
    branch: str | None = None
    commit: str | None = None
    message: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    meta_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerStep(StepBase):
    pipeline: str = ""
    is_async: bool = False
    build: TriggerBuild = TriggerBuild()
    soft_fail: SoftFail = NO_SOFT_FAIL
    skip: str | None = None

    @property
    def type(self) -> str:
        return "trigger"


@dataclass(frozen=True)
class GroupStep(StepBase):
    """A group; it is done when every step in it is (its ``needs`` are its children)."""

    children: tuple[str, ...] = ()
    skip: str | None = None

    @property
    def type(self) -> str:
        return "group"


# --- Bastion's own step kinds (verification, release marker): see yaml/verification.py ---------


@dataclass(frozen=True)
class ScanStep(StepBase):
    """``scan:``: a scan of a target of the organization; fails on findings at ``fail_on``+."""

    target: str = ""
    project: str | None = None
    profile: str = "lightning"
    fail_on: str = "high"  # a severity, or "none": only a scan that could not run fails
    soft_fail: SoftFail = NO_SOFT_FAIL
    skip: str | None = None

    @property
    def type(self) -> str:
        return "scan"


@dataclass(frozen=True)
class BrowserStep(StepBase):
    """``browser:``: a run of a browser suite or test, in an environment; fails when it fails."""

    suite: str | None = None
    test: str | None = None
    environment: str | None = None
    project: str | None = None
    soft_fail: SoftFail = NO_SOFT_FAIL
    skip: str | None = None

    @property
    def type(self) -> str:
        return "browser"


@dataclass(frozen=True)
class ReleaseStep(StepBase):
    """``release:``: tells the error tracker that ``version`` was deployed to ``environment``."""

    version: str = ""
    environment: str = "production"
    project: str | None = None
    soft_fail: SoftFail = NO_SOFT_FAIL
    skip: str | None = None

    @property
    def type(self) -> str:
        return "release"


VerificationStep = ScanStep | BrowserStep | ReleaseStep
Step = CommandStep | WaitStep | BlockStep | TriggerStep | GroupStep | VerificationStep


@dataclass(frozen=True)
class Notification:
    """One ``notify:`` entry: where it goes (``targets``), when (``condition``), and whether
    Bastion sends its kind at all (``supported``; see yaml/notify.py)."""

    kind: str
    targets: tuple[str, ...] = ()
    condition: Condition | None = None
    message: str = ""
    supported: bool = True

    def applies(self, context: dict[str, Any]) -> bool:
        return self.condition is None or self.condition.evaluate(context)


@dataclass(frozen=True)
class Pipeline:
    steps: tuple[Step, ...]
    env: dict[str, str] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    notify: tuple[Notification, ...] = ()
    warnings: tuple[str, ...] = ()

    def step(self, key: str) -> Step:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)
