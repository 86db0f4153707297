"""Run as a separate process on a file SQLite database (tests/jobs/test_race.py).

``setup N AGENTS``: migrate, create a cluster, N jobs and AGENTS agents; print the agent ids.
``race AGENT_ID``: poll, accept, start and finish jobs until none is left; print the job ids.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from bastion.core import services as core
    from bastion.core.access import Principal
    from bastion.core.context import Actor
    from bastion.jobs import dispatch, services
    from bastion.jobs.models import Agent

    mode = sys.argv[1]
    if mode == "setup":
        call_command("migrate", interactive=False, verbosity=0)
        org = core.create_organization(Actor.system("race"), name="Race", slug="race", owner=None)
        principal = Principal.system("race", organization=org)
        cluster = services.create_cluster(principal, org, name="race")
        token = services.create_agent_token(principal, cluster).plaintext
        for n in range(int(sys.argv[2])):
            dispatch.create_job(
                principal, org, cluster, kind="command", payload={"command": f"echo {n}"}
            )
        agents = [
            dispatch.register_agent(token, name=f"racer-{n}", tags={}).agent.pk
            for n in range(int(sys.argv[3]))
        ]
        print(json.dumps(agents))
        return
    agent = Agent.objects.select_related("cluster").get(pk=int(sys.argv[2]))
    taken = []
    for _ in range(10_000):  # bounded
        job = dispatch.poll(agent)
        if job is None:
            break
        taken.append(job.pk)
        dispatch.accept(agent, job.pk)
        dispatch.finish(dispatch.start(job), 0)
    print(json.dumps(taken))


if __name__ == "__main__":
    main()
