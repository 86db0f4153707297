"""Buildkite-compatible ``pipeline.yml``: parse, validate, normalize (pure, no database)."""

from bastion.pipelines.yaml.errors import PipelineInvalid, Problem
from bastion.pipelines.yaml.expressions import ExpressionError, branch_matches, compile_condition
from bastion.pipelines.yaml.normalize import parse_pipeline
from bastion.pipelines.yaml.steps import (
    BlockStep,
    CommandStep,
    Dependency,
    GroupStep,
    Pipeline,
    SelectField,
    Step,
    TextField,
    TriggerStep,
    WaitStep,
)

__all__ = [
    "BlockStep",
    "CommandStep",
    "Dependency",
    "ExpressionError",
    "GroupStep",
    "Pipeline",
    "PipelineInvalid",
    "Problem",
    "SelectField",
    "Step",
    "TextField",
    "TriggerStep",
    "WaitStep",
    "branch_matches",
    "compile_condition",
    "parse_pipeline",
]
