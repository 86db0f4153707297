"""The Bastion agent: a process that runs jobs, talking to the server only through the agent API."""
