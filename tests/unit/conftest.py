"""Unit-test hooks: the fuzz suite's count of cases at the end of a session (BENCHMARKS.md)."""


def pytest_terminal_summary(terminalreporter):
    from .fuzz_helpers import CASES

    if CASES["n"]:
        terminalreporter.write_line(f"fuzz suite: {CASES['n']} cases run")


# The planner tests: what `pip install distill-roi` alone (no extras: no torch, onnxruntime,
# LoadGen) must pass. CI runs `-m planner` in a clean venv with only that install (.ci/run).
PLANNER_FILES = {
    "test_planner_only", "test_roi_no_torch", "test_cli_plan", "test_cli_version",
    "test_llm_plan_cli", "test_llm_arch", "test_llm_serving", "test_hardware", "test_scenarios",
    "test_cost", "test_sizing", "test_planner", "test_planner_loadgen", "test_projection",
    "test_measurements", "test_decision", "test_payback", "test_retention", "test_recommend",
    "test_memory", "test_fleet", "test_edge", "test_forecast", "test_forecastcheck",
    "test_datagen_cost",
    "test_budget", "test_reports_markdown", "test_results", "test_sanity", "test_importers",
    "test_layers", "test_caches",
}
NOT_PLANNER = {  # tests in planner files that reach bench (psutil, LoadGen): the bench extra
    "test_config_spec_in_the_zoo_is_projected_not_run",  # bench's zoo
    "test_mlperf_detail_agrees_with_the_human_summary", "test_loadtest_run_reads_the_detail_log",
    "test_loadtest_scenarios_as_mlperf_spells_them", "test_loadtest_unknown_scenario_still_refused",
}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.path.stem in PLANNER_FILES and item.originalname not in NOT_PLANNER:
            item.add_marker(pytest.mark.planner)


def pytest_ignore_collect(collection_path, config):
    """With `-m planner`, the other test files are not even imported (they import torch)."""
    if config.getoption("markexpr", "") == "planner" and collection_path.suffix == ".py" \
            and collection_path.name.startswith("test_"):
        return collection_path.stem not in PLANNER_FILES
    return None
