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

# What a user names with --backends -> (backend column, dtype column). bench/variants.py says
# how each ORT file is built; bench/gate.py holds each variant's quality tolerance.
VARIANTS: dict[str, tuple[str, str]] = {
    "torch-eager": ("torch-eager", "fp32"),
    "torch-eager-bf16": ("torch-eager", "bf16"),
    "ort-fp32": ("ort", "fp32"),
    "ort-int8": ("ort", "int8"),
    "ort-int8-static": ("ort-static", "int8"),
    "ort-int8-static-all": ("ort-static-all", "int8"),
    "ort-fused-fp32": ("ort-fused", "fp32"),
    "ort-fused-int8": ("ort-fused", "int8"),
    "ort-int8-wo": ("ort-wo", "int8"),
    "ort-int4-wo": ("ort-wo", "int4"),
}
# The variants `roi bench` and `roi run` measure when none are named.
BACKENDS = ("torch-eager", "ort-fp32", "ort-int8")
# Every variant that can be a deployment on this project's CPUs (`--backends deploy`, the
# fast-path sweep); the naive ort-int8-static-all is left out: it is there to show what the
# gate catches.
DEPLOY_VARIANTS = ("torch-eager", "torch-eager-bf16", "ort-fp32", "ort-int8", "ort-int8-static",
                   "ort-fused-fp32", "ort-fused-int8", "ort-int8-wo", "ort-int4-wo")

# The project's one-time cost (roi.payback.RoiInputs).
ENGINEERING_WEEKS = 2.0  # the seed: "a 1-2 week distillation project"
ENGINEERING_WEEKS_HELP = "Engineering effort of the project."
ENGINEERING_USD_PER_WEEK = 4_000.0  # assumption: ~$200K loaded cost a year / 50 weeks
ENGINEERING_USD_PER_WEEK_HELP = "Loaded cost of an engineer-week, USD."
TRAINING_HARDWARE = "a10g"  # where labeling and training run (catalog name)
TRAINING_HARDWARE_HELP = "Catalog hardware that labels and trains (its hourly price is charged)."

# Teacher-generated data priced into the one-time cost (roi.datagen_cost.DataGenInputs, `roi plan
# --datagen-*`): tokens per sample when the user names none.
DATAGEN_PROMPT_TOKENS = 64.0
DATAGEN_COMPLETION_TOKENS = 128.0
# The encoder tasks (models.encoder, `roi distill-encoder --task`): one loss and metric each.
ENCODER_TASKS = ("embedding", "classification", "cross-encoder")
