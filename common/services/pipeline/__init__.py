"""The question pipeline: plan (router + orchestrator) -> manipulate (SQL) -> visualize and analyze in
parallel -> compile, each stage one task on the queue, each moving the query job with compare-and-set.

- ``deps``: what every stage needs, built once per instance from the composition root.
- ``request``: a question's request validated, its model and credentials resolved.
- ``submit``: create the job and enqueue its first stage.
- ``domain_data``: what the agents are told about the domain (profiles, turns, documents).
- ``agent_call``: one agent's prompt rendered, called, parsed, and asked again once when malformed.
- ``stages``: the five stages; ``runner``: claim, run, record and enqueue the next stage.
- ``views``: the job as the v1 API and the original API show it.
"""
