"""Check the build's commit out into a job's fresh working directory (git, shallow if possible).

The server names the repository, branch and commit (``payload["checkout"]``); the agent checks
the address again (no ``ext::``-style transport helpers, no option-like arguments), runs git
with a bounded time per command, and logs each step. A specific commit is fetched shallowly when
the server allows it, else the branch (or everything) is fetched and the commit checked out.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bastion.pipelines.repository import repository_problem

GIT_TIMEOUT_S = 600.0
# Transport helpers that run programs are refused whatever git's own defaults are.
_GIT = ["git", "-c", "protocol.ext.allow=never", "-c", "advice.detachedHead=false"]


class CheckoutFailed(Exception):
    pass


def _git(args: list[str], workdir: Path, env: dict[str, str], log: Callable[[str], None]) -> bool:
    try:
        done = subprocess.run(
            [*_GIT, *args],
            cwd=workdir,
            env={**env, "GIT_TERMINAL_PROMPT": "0"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log(f"[bastion-agent] git {args[0]}: {exc}\n")
        return False
    if done.stdout:
        log(done.stdout)
    if done.returncode != 0 and done.stderr:
        log(done.stderr)
    return done.returncode == 0


def _is_sha(commit: str) -> bool:
    return 7 <= len(commit) <= 64 and all(c in "0123456789abcdefABCDEF" for c in commit)


def checkout(
    spec: dict[str, Any], workdir: Path, env: dict[str, str], log: Callable[[str], None]
) -> str:
    """Fetch and check out; returns the commit checked out. Raises CheckoutFailed."""
    repository = str(spec.get("repository") or "")
    branch = str(spec.get("branch") or "")
    commit = str(spec.get("commit") or "HEAD")
    problem = repository_problem(repository) or ("no repository" if not repository else None)
    if problem is not None:
        raise CheckoutFailed(f"refusing the repository address: {problem}")
    if branch.startswith("-") or commit.startswith("-"):
        raise CheckoutFailed("refusing a branch or commit that looks like an option")
    log(f"~~~ Preparing working directory: {repository} ({branch} {commit})\n")

    def git(*args: str) -> bool:
        return _git(list(args), workdir, env, log)

    if not (git("init", "--quiet", ".") and git("remote", "add", "origin", repository)):
        raise CheckoutFailed("git init failed")
    if _is_sha(commit):
        fetched = git("fetch", "--quiet", "--depth", "1", "origin", commit) or git(
            "fetch", "--quiet", "origin"
        )
        target = commit if fetched else ""
    else:
        ref = branch or "HEAD"
        fetched = git("fetch", "--quiet", "--depth", "1", "origin", ref)
        target = "FETCH_HEAD"
    if not fetched or not git("checkout", "--quiet", "--force", target):
        raise CheckoutFailed(f"could not fetch {commit if _is_sha(commit) else branch}")
    if branch and not branch.startswith("refs/"):
        git("checkout", "--quiet", "-B", branch)
    head = subprocess.run(
        [*_GIT, "rev-parse", "HEAD"], cwd=workdir, capture_output=True, text=True, check=False
    ).stdout.strip()
    log(f"[bastion-agent] checked out {head}\n")
    return head
