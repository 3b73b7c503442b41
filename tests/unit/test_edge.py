"""Edge economics (roi.edge): fit, energy, battery, download size, device fleet cost and the
answer per device scenario, against hand-computed figures."""

import pandas as pd
import pytest

from roi.edge import (
    CHEAPER, NO_CHANGE, RUNS_AT_ALL, device_row, edge_answer, edge_section, energy_wh_per_1k,
    side_by_side, usable_memory_mib,
)
from contracts.errors import InputError
from contracts.plan import parse_plan
from roi.hardware import Hardware, shipped_catalog
from roi.scenarios import parse_scenarios, presets

CATALOG = shipped_catalog()
IOT = presets()["embedded-iot"]
MOBILE = presets()["mobile-on-device"]


def _row(model="m:student", role="student", total_mib=300.0, p50=100.0, meets=True,
         weight_bytes=4_000_000, hardware="raspberry-pi-4b-1gb", scenario="embedded-iot"):
    return {"scenario": scenario, "hardware": hardware, "model": model, "role": role,
            "backend": "ort", "dtype": "fp32", "deploy_runtime": "ort/fp32",
            "source": "projected", "total_mib": total_mib, "runtime_mib": 200.0,
            "runtime_source": "assumed 200 MiB", "service_ms_p10": p50 * 0.5,
            "service_ms_p50": p50, "service_ms_p90": p50 * 2, "latency_ms_alone_p90": p50 * 3,
            "meets_sla": meets, "weight_bytes": weight_bytes,
            "reason": "meets the SLA and fits memory" if meets else "misses the SLA: slow"}


def test_a_model_fits_a_1_gb_board_only_with_its_runtime_inside_1024_mib():
    pi = CATALOG.get("raspberry-pi-4b-1gb")
    assert pi.figure("memory_gib") == 1 and pi.figure("unit_usd") == 35
    fits = device_row(_row(total_mib=1000.0), pi, IOT)
    too_big = device_row(_row(total_mib=1100.0), pi, IOT)
    assert fits["usable_memory_mib"] == 1024 and fits["fits"] and fits["runs"]
    assert not too_big["fits"] and not too_big["runs"]
    assert too_big["why_not"].startswith("does not fit: needs 1.07 GiB, limit 1.00 GiB")


def test_the_usable_memory_is_the_scenario_limit_capped_at_the_device():
    assert usable_memory_mib(4, 1) == 1024  # a 4 GiB limit does not make a 1 GB board larger
    assert usable_memory_mib(1, 8) == 1024
    assert usable_memory_mib(None, 8) == 8192
    assert usable_memory_mib(None, None) == float("inf")


def test_energy_per_1000_inferences_is_power_times_service_time():
    # 6.4 W x 0.1 s = 0.64 J per inference; x 1000 = 640 J = 640 / 3600 Wh
    assert energy_wh_per_1k(6.4, 100.0) == pytest.approx(640 / 3600)
    row = device_row(_row(p50=100.0), CATALOG.get("raspberry-pi-4b-1gb"), IOT)
    assert row["power_w"] == 6.4
    assert row["energy_wh_per_1k_p50"] == pytest.approx(0.177778, rel=1e-5)
    assert row["energy_wh_per_1k_p10"] == pytest.approx(0.088889, rel=1e-5)
    assert row["energy_wh_per_1k_p90"] == pytest.approx(0.355556, rel=1e-5)
    assert row["battery_share_per_1k"] is None  # a mains-powered board
    assert energy_wh_per_1k(None, 100.0) is None and energy_wh_per_1k(5, float("nan")) is None


def test_battery_share_of_a_phone_per_1000_inferences_and_per_day():
    se = CATALOG.get("iphone-se-2022")
    assert (se.figure("power_w"), se.figure("battery_wh")) == (6, 7.82)
    row = device_row(_row(p50=50.0, hardware="iphone-se-2022"), se, MOBILE)
    # 6 W x 50 ms x 1000 / 3600 = 0.083333 Wh; / 7.82 Wh = 1.0656%; 200 requests/day: x 0.2
    assert row["energy_wh_per_1k_p50"] == pytest.approx(0.0833333, rel=1e-5)
    assert row["battery_share_per_1k"] == pytest.approx(0.0833333 / 7.82, rel=1e-5)
    assert row["battery_share_per_day"] == pytest.approx(0.0833333 / 7.82 * 0.2, rel=1e-5)
    assert row["user_owned"] and row["fleet_usd"] == 429 * 100_000  # the users' outlay
    assert edge_section([MOBILE], pd.DataFrame([_row(hardware="iphone-se-2022",
                                                     scenario=MOBILE.name)]), CATALOG, "t",
                        "m:student")["scenarios"][MOBILE.name]["ownership"] == (
        "users' own devices (not capex)")


def test_a_device_without_price_or_power_is_kept_named_and_never_costed_at_zero():
    chip = CATALOG.get("snapdragon-8-gen-3")
    assert chip.figure("unit_usd") is None and chip.figure("power_w") is None
    row = device_row(_row(hardware=chip.name), chip, MOBILE)
    assert row["runs"] and row["missing"] == ["price", "power"]
    assert row["unit_usd"] is None and row["fleet_usd"] is None  # not $0
    assert row["energy_wh_per_1k_p50"] is None and row["battery_share_per_1k"] is None
    assert any(n.startswith("no price figure") for n in row["notes"])
    assert any(n.startswith("no power figure") for n in row["notes"])
    # the only device the student runs on has no price: no dollars in the answer
    rows = [{**row, "model": "t", "runs": True}, row]
    answer = edge_answer(rows, "t", "m:student", 1000)
    assert answer["kind"] == NO_CHANGE and "no price figure" in answer["text"]
    assert answer["saves_usd"] is None and "$0" not in answer["text"]


def test_the_fleet_cost_of_a_unit_count_and_the_cheaper_device_class():
    scenario = IOT.model_copy(update={"devices": 1000})
    pi, jetson = CATALOG.get("raspberry-pi-4b-1gb"), CATALOG.get("jetson-orin-nano")
    rows = [device_row(_row("t", "teacher", total_mib=1100.0), pi, scenario),
            device_row(_row("s"), pi, scenario),
            device_row(_row("t", "teacher", hardware=jetson.name), jetson, scenario),
            device_row(_row("s", hardware=jetson.name), jetson, scenario)]
    assert rows[1]["fleet_usd"] == 35 * 1000 and rows[2]["fleet_usd"] == 249 * 1000
    answer = edge_answer(rows, "t", "s", 1000)
    assert answer["kind"] == CHEAPER
    assert (answer["student_device"], answer["teacher_device"]) == (pi.name, jetson.name)
    assert answer["saves_usd_per_device"] == 214 and answer["saves_usd"] == 214_000
    assert "saves $214 per device, $214,000 for 1,000 devices of capex" in answer["text"]


def test_runs_at_all_when_the_teacher_runs_on_no_device_and_no_change_when_it_does():
    pi = CATALOG.get("raspberry-pi-4b-1gb")
    slow = device_row(_row("t", "teacher", meets=False), pi, IOT)
    fast = device_row(_row("s"), pi, IOT)
    answer = edge_answer([slow, fast], "t", "s", IOT.devices)
    assert answer["kind"] == RUNS_AT_ALL
    assert "no candidate device (raspberry-pi-4b-1gb: misses the SLA: slow)" in answer["text"]
    assert "raspberry-pi-4b-1gb ($35 each; $35,000 for 1,000 devices of capex)" in answer["text"]
    both = edge_answer([device_row(_row("t", "teacher"), pi, IOT), fast], "t", "s", 1000)
    assert both["kind"] == NO_CHANGE and both["saves_usd"] is None
    assert both["text"].startswith("no change: the teacher already runs on raspberry-pi-4b-1gb")
    none = edge_answer([slow], "t", None, 1000)
    assert none["text"] == "no change: no student is costed"
    neither = edge_answer([slow, {**fast, "runs": False}], "t", "s", 1000)
    assert neither["text"] == "no change: s runs on no candidate device; nor does the teacher"


@pytest.mark.parametrize("bad", [0, -5, 1.5, "many", True, 10**11])
def test_a_bad_unit_count_is_one_input_error_naming_devices(bad):
    raw = {**IOT.model_dump(mode="json"), "devices": bad}
    with pytest.raises(InputError) as e:
        parse_scenarios(raw, "s.yaml")
    message = str(e.value)
    assert "devices" in message and "\n" not in message


def test_a_unit_count_on_a_cloud_scenario_is_refused():
    raw = {**presets()["real-time-api"].model_dump(mode="json"), "devices": 10}
    with pytest.raises(InputError, match="devices: a unit count is for deployment: device"):
        parse_scenarios(raw, "s.yaml")


def test_phones_are_the_users_own_so_the_sizing_does_not_amortize_them():
    from roi.fleet import _prices_and_limits, Assumptions

    g = pd.DataFrame({"hardware": ["a17-pro", "raspberry-pi-4b-1gb"], "total_mib": [1.0, 1.0]})
    _prices_and_limits(g, MOBILE, CATALOG, Assumptions())
    assert CATALOG.get("a17-pro").figure("unit_usd") == 999
    assert g["usd_per_hour"].tolist()[0] == 0.0  # the users' phone: no monthly bill
    assert g["usd_per_hour"].tolist()[1] == pytest.approx(35 / (36 * 730))


def test_edge_section_covers_device_scenarios_only():
    best = pd.DataFrame([_row("t", "teacher"), _row("s", p50=50.0, weight_bytes=2_000_000)])
    catalog = CATALOG
    assert edge_section([presets()["real-time-api"]], best, catalog, "t", "s") is None
    edge = edge_section([IOT], best, catalog, "t", "s")
    entry = edge["scenarios"]["embedded-iot"]
    assert entry["devices"] == 1000 and entry["ownership"] == "bought by the deployment (capex)"
    assert [r["model"] for r in entry["rows"]] == ["t", "s"]
    assert entry["answer"]["kind"] == NO_CHANGE
    # same device, same power: half the time is half the energy; the download beside it
    assert entry["answer"]["also"] == ("on raspberry-pi-4b-1gb, s: 0.0889 Wh per 1,000 "
                                       "inferences vs the teacher's 0.178 (-50%); a 2.0 MB "
                                       "download vs 4.0 MB")


def test_a_user_file_row_without_power_is_accepted_and_flagged():
    board = Hardware.model_validate({"name": "my-board", "kind": "device", "unit_usd": {
        "value": 20, "source": "shop", "source_date": "2026-11"}, "memory_gib": {
        "value": 1, "source": "shop", "source_date": "2026-11"}})
    row = device_row(_row(hardware="my-board"), board, IOT)
    assert row["missing"] == ["power"] and row["fleet_usd"] == 20 * 1000
    assert row["energy_wh_per_1k_p50"] is None


def test_the_plan_report_and_console_carry_the_edge_answer(tmp_path, capsys):
    from reports import html
    from reports.deployment import edge_economics_section
    from reports.inputs import Inputs
    from roi import plan
    from app.console import print_plan_summary
    from tests.unit.plan_helpers import FIXTURE

    doc = plan(pd.read_csv(FIXTURE), ["real-time-api", "embedded-iot"]).to_dict()
    assert "edge" not in plan(pd.read_csv(FIXTURE), "real-time-api").to_dict()
    entry = doc["edge"]["scenarios"]["embedded-iot"]
    assert set(doc["edge"]["scenarios"]) == {"embedded-iot"}
    assert {r["device"] for r in entry["rows"]} == {"raspberry-pi-4b-1gb", "raspberry-pi-5",
                                                    "jetson-orin-nano"}
    teacher = next(r for r in entry["rows"] if r["role"] == "teacher"
                   and r["device"] == "raspberry-pi-4b-1gb")
    # what bench measured for the teacher's ORT int8 file (tests/fixtures/bench_results.csv),
    # the configuration it is costed on there (a CPU board: projected as a CPU)
    assert teacher["config"] == "ort/int8"
    assert teacher["artifact_bytes"] == 14_441_730 and teacher["artifact_source"].startswith(
        "measured by bench")
    assert teacher["energy_wh_per_1k_p50"] == pytest.approx(
        6.4 * teacher["service_ms_p50"] / 3600)
    section = edge_economics_section(Inputs(parse_plan(doc)), {})
    page = html.section(section, {})
    assert f"embedded-iot: {entry['answer']['kind']}" in page and "raspberry-pi-4b-1gb" in page
    assert "users&#x27; own" not in page and "capex" in page  # escaped quotes, boards are capex
    print_plan_summary(doc, tmp_path)
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert " ".join(f"edge (embedded-iot): {entry['answer']['text']}".split()) in out


def test_the_side_by_side_names_no_teacher_energy_where_the_teacher_does_not_run():
    pi = CATALOG.get("raspberry-pi-4b-1gb")
    rows = [device_row(_row("t", "teacher", total_mib=3000.0), pi, IOT),
            device_row(_row("s", p50=50.0, weight_bytes=2_000_000), pi, IOT)]
    answer = edge_answer(rows, "t", "s", 1000)
    assert answer["kind"] == RUNS_AT_ALL
    assert "(raspberry-pi-4b-1gb: does not fit: needs 2.93 GiB, limit 1.00 GiB)" in answer["text"]
    assert side_by_side(rows, "t", "s", pi.name) == (
        "on raspberry-pi-4b-1gb, s: 0.0889 Wh per 1,000 inferences (the teacher does not run "
        "there); a 2.0 MB download vs 4.0 MB")
