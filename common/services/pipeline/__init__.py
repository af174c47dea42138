"""The question pipeline: plan (router + orchestrator) -> manipulate (SQL) -> visualize and analyze in
parallel -> compile, each stage one task on the queue, each moving the query job with compare-and-set.

Stages receive the composition root typed as ``common.ports.QuestionPorts`` and the job as a ``QueryJob``.

- ``job``: the typed ``QueryJob`` (request, plan, context, result, chart, answer) and its one codec.
- ``request``: a question's request validated, its model and credentials resolved.
- ``runner``: submit (create the job, enqueue its first stage), run one delivered stage (claim, run,
  store, enqueue the next), cancel; it alone names stage tasks.
- ``domain_data``: what the agents are told about the domain (profiles, turns, documents).
- ``agent_call``: one agent's prompt rendered, called, parsed, and asked again once when malformed;
  ``AgentFailed`` carries the calls a failed step made.
- ``stages``: the five stages; ``answers``: the final answer; ``result_store``: the result table's rows.
- ``answer_cache``: answers reused for the same question on the same data.
- ``pg_tables``/``pushdown``: Postgres tables named by a question, and SQL run on Postgres itself.
- ``views``: the job as the v1 API and the original API show it.
"""
