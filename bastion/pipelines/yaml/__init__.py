"""Buildkite-compatible ``pipeline.yml``: parse, validate, normalize (pure, no database)."""

from bastion.pipelines.yaml.errors import PipelineInvalid, Problem
from bastion.pipelines.yaml.expressions import ExpressionError, branch_matches, compile_condition
from bastion.pipelines.yaml.normalize import parse_pipeline
from bastion.pipelines.yaml.steps import (
    BlockStep,
    BrowserStep,
    CommandStep,
    Dependency,
    GroupStep,
    Pipeline,
    ReleaseStep,
    ScanStep,
    SelectField,
    Step,
    TextField,
    TriggerStep,
    VerificationStep,
    WaitStep,
)

__all__ = [
    "BlockStep",
    "BrowserStep",
    "CommandStep",
    "Dependency",
    "ExpressionError",
    "GroupStep",
    "Pipeline",
    "PipelineInvalid",
    "Problem",
    "ReleaseStep",
    "ScanStep",
    "SelectField",
    "Step",
    "TextField",
    "TriggerStep",
    "VerificationStep",
    "WaitStep",
    "branch_matches",
    "compile_condition",
    "parse_pipeline",
]
