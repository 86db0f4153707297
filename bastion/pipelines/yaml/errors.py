"""What is wrong with a pipeline file, said by place: the line, or the step and the key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One finding. ``where`` names the place, e.g. ``line 4`` or ``steps[2] (key "test")``."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class PipelineInvalid(ValueError):
    """The pipeline cannot be used; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in problems) or "invalid pipeline")

    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]
