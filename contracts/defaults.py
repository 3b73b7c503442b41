"""Defaults that more than one layer states (the `roi` options, `roi run`'s settings, the
planner, the reports), each once, here, with the help text that describes it. Plain values: no
imports, so the command line reads them without slowing its start.
"""

# The lowest acceptable accuracy retention (student / teacher): the seed's 95%.
RETENTION_THRESHOLD = 0.95
RETENTION_THRESHOLD_HELP = ("Lowest acceptable accuracy retention (student / teacher), a "
                            "fraction; the low end of a student's band must reach it.")

# The shipped scenario presets (roi/data/scenarios.yaml), in the seed's order: `roi run`'s
# scenarios when the config names none, and the names the options list.
SCENARIO_PRESETS = ("cloud-batch", "real-time-api", "mobile-on-device", "embedded-iot",
                    "multi-model")

# The variants `roi bench` and `roi run` measure when none are named (keys of
# bench.measure.VARIANTS).
BACKENDS = ("torch-eager", "ort-fp32", "ort-int8")

# The project's one-time cost (roi.payback.RoiInputs).
ENGINEERING_WEEKS = 2.0  # the seed: "a 1-2 week distillation project"
ENGINEERING_WEEKS_HELP = "Engineering effort of the project."
ENGINEERING_USD_PER_WEEK = 4_000.0  # assumption: ~$200K loaded cost a year / 50 weeks
ENGINEERING_USD_PER_WEEK_HELP = "Loaded cost of an engineer-week, USD."
TRAINING_HARDWARE = "a10g"  # where labeling and training run (catalog name)
TRAINING_HARDWARE_HELP = "Catalog hardware that labels and trains (its hourly price is charged)."
