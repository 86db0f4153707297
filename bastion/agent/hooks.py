"""Agent-side hooks, Buildkite's lifecycle: ``environment``, ``pre-command``, ``post-command``
and ``pre-exit`` scripts in the agent's own hooks directory (``--hooks-path``).

Only the person who starts the agent chooses them: the directory is an agent option, and nothing
the server sends can name or change it. The hooks are sourced by one bash wrapper around the
command, so variables they export reach the command (and later hooks). A hook that fails fails
the job; ``pre-exit`` runs whatever happened; the command runs in its own ``bash -c`` as without
hooks, and ``post-command`` sees its status in ``BUILDKITE_COMMAND_EXIT_STATUS``.
"""

from __future__ import annotations

from pathlib import Path

HOOKS = ("environment", "pre-command", "post-command", "pre-exit")

# $1: the hooks directory, $2: the job's command.
WRAPPER = r"""
__bastion_hook() {
  if [ -f "$__BASTION_HOOKS/$1" ]; then
    echo "~~~ Running agent $1 hook"
    . "$__BASTION_HOOKS/$1"
  fi
}
__bastion_pre_exit() {
  __bastion_status=$?
  trap - EXIT
  if [ -f "$__BASTION_HOOKS/pre-exit" ]; then
    echo "~~~ Running agent pre-exit hook"
    ( . "$__BASTION_HOOKS/pre-exit" )
  fi
  exit "$__bastion_status"
}
__BASTION_HOOKS="$1"
__BASTION_COMMAND="$2"
trap __bastion_pre_exit EXIT
__bastion_hook environment || exit $?
__bastion_hook pre-command || exit $?
bash -c "$__BASTION_COMMAND"
__bastion_command_status=$?
export BUILDKITE_COMMAND_EXIT_STATUS=$__bastion_command_status
__bastion_hook post-command || exit $?
exit $__bastion_command_status
"""


def command_argv(command: str, hooks_path: Path | None) -> list[str]:
    """What to run for a command job: the command alone, or wrapped in the agent's hooks."""
    if hooks_path is None:
        return ["bash", "-c", command]
    return ["bash", "-c", WRAPPER, "bastion-hooks", str(hooks_path), command]
