"""The ``command`` executor: bash in a fresh working directory, in its own process group.

With a verification key, the signed step is checked first (``bastion.pipelines.signing``),
then the build's commit is checked out when the job names a repository: a refused job runs
nothing, not even git. Output is read without blocking and handed to the log as it arrives. Cancellation (a person, a
timeout or the agent stopping) sends SIGTERM to the whole group, then SIGKILL after the grace
period. A process killed by signal N exits with 128 + N, as shells report it.
"""

from __future__ import annotations

import codecs
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass

from bastion.agent.checkout import CheckoutFailed, checkout
from bastion.agent.executors import JobContext, JobOutcome, executor
from bastion.agent.hooks import command_argv

READ_BYTES = 64 * 1024
TICK_S = 0.1
# Output may stay open in a background child after the shell exits; wait this long, then kill.
ORPHAN_OUTPUT_S = 1.0
# A local bound on any job, in case the server can no longer be reached to time it out.
NO_TIMEOUT_BOUND_S = 7 * 24 * 3600.0


def _kill_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class _Cancel:
    reason: str | None = None
    term_at: float | None = None
    killed: bool = False


def _check_cancel(ctx: JobContext, proc: subprocess.Popen[bytes], state: _Cancel) -> None:
    now = time.monotonic()
    if state.reason is None:
        state.reason = ctx.cancel_requested()
        if state.reason is not None:
            ctx.log(f"\n[bastion-agent] {state.reason}: stopping the job (SIGTERM)\n")
            _kill_group(proc.pid, signal.SIGTERM)
            state.term_at = now
    elif not state.killed and state.term_at is not None and now - state.term_at >= ctx.grace_s:
        ctx.log(f"\n[bastion-agent] still running after {ctx.grace_s:g}s: SIGKILL\n")
        _kill_group(proc.pid, signal.SIGKILL)
        state.killed = True


def _pump(ctx: JobContext, proc: subprocess.Popen[bytes]) -> _Cancel:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    state = _Cancel()
    bound = (ctx.timeout_s * 1.5 + 60.0) if ctx.timeout_s else NO_TIMEOUT_BOUND_S
    deadline = time.monotonic() + bound
    exited_at: float | None = None
    eof = finished = False
    while not finished and time.monotonic() < deadline:
        if eof:
            try:  # the output is closed but the process may still run
                proc.wait(timeout=TICK_S)
            except subprocess.TimeoutExpired:
                pass
        elif select.select([fd], [], [], TICK_S)[0]:
            data = os.read(fd, READ_BYTES)
            if data:
                ctx.log(decoder.decode(data))
            else:
                eof = True
        if proc.poll() is not None:
            finished = eof
            exited_at = exited_at or time.monotonic()
            if not eof and time.monotonic() - exited_at > ORPHAN_OUTPUT_S:
                _kill_group(proc.pid, signal.SIGKILL)  # background children holding the pipe
        if not finished:
            _check_cancel(ctx, proc, state)
    if not finished:
        ctx.log("\n[bastion-agent] the job overran its local time bound: SIGKILL\n")
        state.reason = state.reason or "timed_out"
    ctx.log(decoder.decode(b"", final=True))
    return state


def _exit_status(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


@executor("command")
def run_command(ctx: JobContext) -> JobOutcome:
    command = ctx.payload.get("command")
    if not isinstance(command, str) or not command.strip():
        ctx.log("[bastion-agent] this command job has no payload.command\n")
        return JobOutcome(exit_status=1, signal_reason="agent_refused")
    if ctx.verification_key is not None:
        from bastion.pipelines.signing import REJECTED, check_payload

        reason = check_payload(ctx.verification_key, ctx.payload, ctx.agent_tags)
        if reason is not None:
            ctx.log(f"[bastion-agent] signature rejected, nothing was run: {reason}\n")
            return JobOutcome(exit_status=-1, signal_reason=REJECTED)
    spec = ctx.payload.get("checkout")
    if isinstance(spec, dict):
        try:
            checkout(spec, ctx.workdir, ctx.env, ctx.log)
        except CheckoutFailed as exc:
            ctx.log(f"[bastion-agent] checkout failed, nothing was run: {exc}\n")
            return JobOutcome(exit_status=1, signal_reason="checkout_failed")
    env = dict(ctx.env)
    extra = ctx.payload.get("env") or {}
    if isinstance(extra, dict):
        env.update({str(k): str(v) for k, v in extra.items()})
    try:
        proc = subprocess.Popen(
            command_argv(command, ctx.hooks_path),
            cwd=ctx.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session and process group: killpg reaches all
        )
    except OSError as exc:
        ctx.log(f"[bastion-agent] could not start bash: {exc}\n")
        return JobOutcome(exit_status=1, signal_reason="process_run_error")
    try:
        state = _pump(ctx, proc)
    finally:
        _kill_group(proc.pid, signal.SIGKILL)  # nothing of the job outlives it
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    status = _exit_status(proc.returncode)
    if state.reason is not None:
        reason = "agent_stop" if state.reason == "agent_stop" else "cancel"
        return JobOutcome(exit_status=status, signal_reason=reason)
    return JobOutcome(exit_status=status)
