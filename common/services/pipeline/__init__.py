"""The question pipeline: plan (one planner call: scope, chart, insight, SQL) -> manipulate (run the SQL; repair
it with the manipulator only when it fails) -> visualize and compile side by side (the chart, from a template
or the visualizer; the answer, streamed by the analyst), each stage one task on the queue, each moving the
query job with compare-and-set. Two model rounds for a full question.

Stages receive the composition root typed as ``common.ports.QuestionPorts`` and the job as a ``QueryJob``.

- ``job``: the typed ``QueryJob`` (request, plan, context, result, chart, answer) and its one codec.
- ``request``: a question's request validated, its model and credentials resolved.
- ``runner``: submit (create the job, enqueue its first stage), run one delivered stage (claim, run,
  store, enqueue the next), cancel; it alone names stage tasks.
- ``domain_data``: what the agents are told about the domain (profiles, turns, documents).
- ``agent_call``: one agent's prompt rendered, called, parsed, and asked again once when malformed;
  ``AgentFailed`` carries the calls a failed step made.
- ``stages``: the four stages; ``answers``: the final answer; ``answer_stream``: its text while it is written;
  ``result_store``: the result table's rows; ``events``: the job as Server-Sent Events.
- ``answer_cache``: answers reused for the same question on the same data.
- ``pg_tables``/``pushdown``: Postgres tables named by a question, and SQL run on Postgres itself.
- ``views``: the job as the v1 API and the original API show it.
"""
