"""hf:DIR on tiny random Hugging Face checkpoints built offline: class picking, inputs, ONNX
export and the isolated sweep, for encoders and decoder-only causal LMs of several families."""

import json

import pandas as pd
import pytest

import bench
from bench.export import prepare
from contracts.errors import InputError
from models.runtime import EXPORT_RTOL, first_output_module
from models.zoo import hf_model_class, load_torch, parse_spec

pytestmark = pytest.mark.slow  # end to end: subprocesses that import torch; still run in CI

transformers = pytest.importorskip("transformers")  # the optional `hf` extra

VOCAB, HIDDEN, CONTEXT = 96, 32, 64
DECODER = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=CONTEXT)
ENCODER = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=2, max_position_embeddings=CONTEXT)


def _tiny(name: str):
    """A tiny random model: (model, is causal LM). One place lists every family tested."""
    t = transformers
    if name == "bert":
        return t.BertModel(t.BertConfig(**ENCODER)), False
    if name == "bert-cls":
        return t.BertForSequenceClassification(t.BertConfig(num_labels=3, **ENCODER)), False
    if name == "roberta":  # type_vocab_size=1; positions start after the padding index
        cfg = {**ENCODER, "max_position_embeddings": CONTEXT + 2}
        return t.RobertaModel(t.RobertaConfig(**cfg, type_vocab_size=1, pad_token_id=1)), False
    if name == "distilbert":  # no token_type_ids
        return t.DistilBertModel(t.DistilBertConfig(
            vocab_size=VOCAB, dim=HIDDEN, hidden_dim=64, n_layers=2, n_heads=2,
            max_position_embeddings=CONTEXT)), False
    if name == "gpt2":  # tied head; forward accepts token_type_ids it must not be given
        return t.GPT2LMHeadModel(t.GPT2Config(
            vocab_size=VOCAB, n_embd=HIDDEN, n_layer=2, n_head=2, n_positions=CONTEXT,
            bos_token_id=0, eos_token_id=0)), True
    if name == "llama":  # grouped-query attention, rotary positions
        return t.LlamaForCausalLM(t.LlamaConfig(**DECODER)), True
    if name == "qwen2":  # saved with return_dict=False, which transformers' own forward trips on
        return t.Qwen2ForCausalLM(t.Qwen2Config(**DECODER, return_dict=False)), True
    raise KeyError(name)


def _save(name: str, root, drop_architectures: bool = False) -> tuple[str, int, bool]:
    """Save a tiny model as safetensors; (spec, parameter count, is causal LM)."""
    import torch

    torch.manual_seed(0)
    model, causal = _tiny(name)
    path = root / name
    model.save_pretrained(path)  # safetensors by default
    if drop_architectures:  # the class must then come from model_type alone
        cfg = json.loads((path / "config.json").read_text())
        del cfg["architectures"]
        (path / "config.json").write_text(json.dumps(cfg))
    return f"hf:{path}", sum(p.numel() for p in model.parameters()), causal


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    saved = [_save("bert", root), _save("gpt2", root), _save("llama", root),
             _save("qwen2", root, drop_architectures=True)]
    return {spec: (params, causal) for spec, params, causal in saved}


@pytest.fixture(scope="module")
def sweep(models, tmp_path_factory):
    """One sweep over every model: each configuration costs a fresh process importing torch.

    The exports are made here first, in this process (transformers is imported already): the
    sweep's own export step then runs the same `prepare` in a subprocess and finds them cached,
    which saves each model a second transformers import (~4 s) and exporter start-up.
    ONNX Runtime runs int8 here (the fp32 graph is verified against torch at export, and
    measured in test_sequences_beyond_the_context_are_skipped_on_every_backend): 8 processes,
    not 12."""
    for spec in models:
        prepare(parse_spec(spec), [16])
    teacher, *students = models
    df = bench.run(teacher=teacher, students=",".join(students),
                   backends="torch-eager,ort-int8", seq_lens="16", batch_sizes="1",
                   threads="1", device="cpu", quick=True,
                   out=tmp_path_factory.mktemp("hf-sweep") / "run")
    return df


def test_every_model_runs_on_every_backend(models, sweep):
    df = sweep
    assert len(df) == 2 * len(models)
    assert set(df.loc[df["backend"] == "ort", "dtype"]) == {"int8"}
    assert set(df["status"]) == {"ok"}, df[["model", "backend", "dtype", "status", "error"]]
    assert (df["latency_ms_p50"] > 0).all() and (df["flops_per_sample"] > 0).all()
    for spec, (params, _) in models.items():
        rows = df[df["model"] == spec]
        assert set(rows["params"]) == {params}, (spec, rows["params"])
        # torch counts FLOPs when it runs; ORT rows reuse the count made at export
        assert rows["flops_per_sample"].nunique() == 1, (spec, rows["flops_per_sample"])


def test_causal_lms_get_decode_latency_and_encoders_do_not(models, sweep):
    torch_rows = sweep[sweep["backend"] == "torch-eager"].set_index("model")
    for spec, (_, causal) in models.items():
        row = torch_rows.loc[spec]
        if causal:
            assert row["ttft_ms"] > 0 and row["tpot_ms"] > 0, spec
            assert row["decode_mode"] == "kv-cache", spec
        else:
            assert row[["ttft_ms", "tpot_ms"]].isna().all() and pd.isna(row["decode_mode"]), spec
    # ORT: transformers models have no KV-cache graph here, so each new token is a whole
    # forward over the longer sequence, measured as such (and never costed as a cached step)
    for spec, row in sweep[sweep["backend"] == "ort"].set_index("model").iterrows():
        if models[spec][1]:
            assert row["decode_mode"] == "recompute", spec
            assert row["ttft_ms"] > 0 and row["tpot_ms"] > 0, spec
        else:
            assert row[["ttft_ms", "tpot_ms"]].isna().all() and pd.isna(row["decode_mode"]), spec


def test_onnx_export_matches_torch(models, sweep):
    ort_rows = sweep[sweep["backend"] == "ort"]
    assert set(ort_rows["model"]) == set(models)
    assert (ort_rows["export_rel_err"] < EXPORT_RTOL).all(), ort_rows[["model", "export_rel_err"]]
    assert set(ort_rows["export_method"]) <= {"dynamo", "torchscript"}
    torch_rows = sweep[sweep["backend"] == "torch-eager"]
    assert sorted(torch_rows["model_family"]) == ["hf-bert", "hf-gpt2", "hf-llama", "hf-qwen2"]


def test_cached_decode_matches_a_full_forward(models):
    """Greedy tokens from prefill + KV-cache steps equal those of re-running the whole prefix."""
    import torch

    from bench.measure import _decode_fns

    for spec, (_, causal) in models.items():
        if not causal:
            continue
        tm = load_torch(parse_spec(spec))
        prefill, step = _decode_fns(tm, tm.module)
        prompt = tm.make_inputs(2, 8, "cpu")
        with torch.inference_mode():
            token, cache = prefill(prompt)
            tokens = [token]
            for _ in range(3):
                token, cache = step(tokens[-1], cache)
                tokens.append(token)
            ids = torch.cat([prompt["input_ids"], *tokens[:-1]], dim=1)
            full = tm.module(input_ids=ids, **tm.forward_kwargs).logits
        assert torch.equal(full[:, -1:].argmax(-1), tokens[-1]), spec


def test_sequences_beyond_the_context_are_skipped_on_every_backend(models):
    from bench.measure import BenchConfig, MeasureSettings, measure

    spec = next(iter(models))
    info = prepare(parse_spec(spec), [16])
    assert info["max_seq_len"] == CONTEXT
    for variant in ("torch-eager", "ort-fp32"):
        cfg = BenchConfig(spec, "teacher", variant, "cpu", 1, CONTEXT + 1, 1)
        with pytest.raises(InputError, match="maximum context"):
            measure(cfg, MeasureSettings.quick(), info)


def test_a_failing_dynamo_export_falls_back_to_torchscript(models, tmp_path, monkeypatch):
    from models import runtime

    def refuse(*args, **kwargs):
        raise RuntimeError("dynamo cannot trace this model")

    monkeypatch.setattr(runtime, "_export_dynamo", refuse)
    tm = load_torch(parse_spec(list(models)[-1]))  # the causal LM saved with return_dict=False
    method, err = runtime.export_onnx(tm, tm.make_inputs(2, 16, "cpu"), tmp_path / "m.onnx")
    assert method == "torchscript" and err < EXPORT_RTOL and (tmp_path / "m.onnx").is_file()
    monkeypatch.setattr(runtime, "_export_torchscript", refuse)
    with pytest.raises(RuntimeError, match="dynamo: RuntimeError.*torchscript: RuntimeError"):
        runtime.export_onnx(tm, tm.make_inputs(2, 16, "cpu"), tmp_path / "n.onnx")


@pytest.mark.parametrize("name,cls,inputs,causal", [
    ("bert", "BertModel", ("input_ids", "attention_mask", "token_type_ids"), False),
    ("bert-cls", "BertForSequenceClassification",
     ("input_ids", "attention_mask", "token_type_ids"), False),
    ("roberta", "RobertaModel", ("input_ids", "attention_mask", "token_type_ids"), False),
    ("distilbert", "DistilBertModel", ("input_ids", "attention_mask"), False),
    ("gpt2", "GPT2LMHeadModel", ("input_ids", "attention_mask"), True),
    ("qwen2", "Qwen2ForCausalLM", ("input_ids", "attention_mask"), True),
])
def test_loading_builds_inputs_from_the_config(tmp_path, name, cls, inputs, causal):
    spec, params, _ = _save(name, tmp_path, drop_architectures=name == "qwen2")
    tm = load_torch(parse_spec(spec))
    assert tm.extra["hf_class"] == cls and tm.input_names == inputs
    assert tm.is_causal_lm == causal and tm.max_seq_len == CONTEXT
    assert sum(p.numel() for p in tm.module.parameters()) == params
    batch = tm.make_inputs(2, 16, "cpu")
    assert tuple(batch) == inputs and int(batch["input_ids"].max()) < VOCAB
    out = first_output_module(tm.module, list(batch), tm.forward_kwargs)(*batch.values())
    width = {"bert-cls": 3}.get(name, VOCAB if causal else HIDDEN)
    assert tuple(out.shape) == ((2, width) if name == "bert-cls" else (2, 16, width))


def _config(model_type: str, **kw):
    return transformers.AutoConfig.for_model(model_type, **kw)


@pytest.mark.parametrize("config,expected", [
    # without `architectures`: decoder-only types get the causal LM head, encoders the bare model
    (dict(model_type="gpt2"), "AutoModelForCausalLM"),
    (dict(model_type="llama"), "AutoModelForCausalLM"),
    (dict(model_type="qwen2"), "AutoModelForCausalLM"),
    (dict(model_type="bert"), "AutoModel"),
    (dict(model_type="distilbert"), "AutoModel"),
    (dict(model_type="bert", is_decoder=True), "AutoModelForCausalLM"),
    # `architectures` names the exact class, unless transformers has no such torch model
    (dict(model_type="bert", architectures=["BertForSequenceClassification"]),
     "BertForSequenceClassification"),
    (dict(model_type="gpt2", architectures=["GPT2Model"]), "GPT2Model"),
    (dict(model_type="llama", architectures=["MyPrivateLlama"]), "AutoModelForCausalLM"),
    (dict(model_type="bert", architectures=["TFBertModel"]), "AutoModel"),
])
def test_model_class_is_picked_from_the_config(config, expected):
    assert hf_model_class(_config(**config)).__name__ == expected


def test_encoder_decoder_configs_are_refused():
    with pytest.raises(InputError, match="encoder-decoder"):
        hf_model_class(_config("t5"))
