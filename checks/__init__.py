"""checks: measurement against prediction, a layer above both bench (which measures) and the
planner (which predicts), so neither imports the other.

    checks.loadgen       LoadGen rows beside the sizing model's figures (`roi loadtest`)
    checks.llm_timing    a `config:` LLM timed on a GPU (TTFT, TPOT per decode mode)
    checks.llm_check     those timings beside the serving model: `roi check llm-timing`, or
                         `python -m checks.llm_check` where typer is not installed (both
                         derived from checks.llm_check_settings)
"""
