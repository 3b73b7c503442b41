"""Pieces of distill.generate and distill.api_teacher checked by hand: nucleus sampling by
inverse CDF, the retry delay, response parsing, the torn-line repair, prompt files."""

import json
import random

import pytest
import torch

from distill.api_teacher import parse_response, retry_delay_s
from distill.generate import SampleLog, file_prompts, make_generate_config
from distill.local_teacher import pick_tokens
from contracts.errors import InputError


def test_pick_tokens_samples_the_nucleus_by_inverse_cdf():
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]] * 4))
    u = torch.tensor([0.1, 0.6, 0.85, 0.999], dtype=torch.float64)
    # sorted: 1 (0.5), 2 (0.3), 0 (0.2); CDF 0.5, 0.8, 1.0
    assert pick_tokens(logits, 1.0, 1.0, u).tolist() == [1, 2, 0, 0]
    # top_p 0.7 keeps {1, 2}: renormalized CDF 0.625, 1.0
    assert pick_tokens(logits, 1.0, 0.7, u).tolist() == [1, 1, 2, 2]
    assert pick_tokens(logits, 1.0, 0.01, u).tolist() == [1, 1, 1, 1]  # the top token stays
    assert pick_tokens(logits, 0.0, 1.0, u).tolist() == [1, 1, 1, 1]  # greedy
    # a low temperature sharpens: 0.5 -> probabilities ∝ p², CDF 25/38, 34/38, 1
    assert pick_tokens(logits, 0.5, 1.0, u).tolist() == [1, 1, 2, 0]


def test_retry_delay_doubles_with_jitter_and_respects_retry_after():
    rng = random.Random(0)
    for attempt in range(5):
        d = retry_delay_s(attempt, 1.0, 8.0, None, rng)
        full = min(8.0, 2.0**attempt)
        assert full / 2 <= d <= full
    assert retry_delay_s(0, 1.0, 8.0, "3", rng) == 3.0
    assert retry_delay_s(0, 1.0, 8.0, "120", rng) == 8.0  # capped
    assert retry_delay_s(0, 1.0, 8.0, "Wed, 21 Oct 2015 07:28:00 GMT", rng) == 0.0  # past
    assert 0.5 <= retry_delay_s(0, 1.0, 8.0, "soon", rng) <= 1.0  # unreadable: backoff


def test_parse_response_shapes_and_malformed_bodies():
    ok = {"choices": [{"text": "x = 1", "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    assert parse_response(json.dumps(ok).encode(), "completions") == ("x = 1", 3, 4, "stop")
    chat = {"choices": [{"message": {"content": "hi"}}]}
    assert parse_response(json.dumps(chat).encode(), "chat") == ("hi", None, None, "")
    for body in (b"not json", b'{"choices": []}', b'{"choices": [{"text": 5}]}',
                 json.dumps(chat).encode()):
        with pytest.raises(ValueError, match="malformed"):
            parse_response(body, "completions")


def test_sample_log_cuts_a_torn_last_line(tmp_path):
    path = tmp_path / "s.jsonl"
    log = SampleLog(path)
    log.append([{"id": "a"}, {"id": "b"}])
    with open(path, "ab") as f:
        f.write(b'{"id": "c", "compl')
    again = SampleLog(path)
    assert [r["id"] for r in again.records] == ["a", "b"]
    assert path.read_bytes().endswith(b'"b"}\n')
    again.append([{"id": "c"}])
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["a", "b", "c"]


def test_prompt_files_and_settings_are_checked(tmp_path):
    good = tmp_path / "p.jsonl"
    good.write_text('{"prompt": "a"}\n\n{"id": "x", "text": "b"}\n')
    assert [(p.id, p.text) for p in file_prompts(str(good), None)] == [("line-000001", "a"),
                                                                      ("x", "b")]
    dup = tmp_path / "d.jsonl"
    dup.write_text('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n')
    with pytest.raises(InputError, match="given twice"):
        file_prompts(str(dup), None)
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"prompt": ""}\n')
    with pytest.raises(InputError, match=r"b.jsonl:1"):
        file_prompts(str(bad), None)
    for values, field in (({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p"),
                          ({"top_p": 1.01}, "top_p"), ({"max_new_tokens": 0}, "max_new_tokens"),
                          ({"api_base_url": "ftp://x"}, "api_base_url")):
        with pytest.raises(InputError, match=field):
            make_generate_config(values)


# Characters that str.splitlines() splits at but JSON (with ensure_ascii=False, as the sample
# log writes) keeps raw inside a string: a line reader that used splitlines() tore such a record
# in two (found by the CI's interrupt-resume test, whose random teacher wrote one).
LINE_BREAKERS = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"


def test_samples_holding_unicode_line_separators_read_back_whole(tmp_path):
    from distill.data import load_generated

    completions = [f"a{c}b" for c in LINE_BREAKERS]
    log = SampleLog(tmp_path / "samples.jsonl")
    log.append([{"id": f"s{i}", "prompt": "p", "completion": c}
                for i, c in enumerate(completions)])
    assert "\u2028" in (tmp_path / "samples.jsonl").read_text()  # written raw, not escaped
    assert [r["completion"] for r in SampleLog(tmp_path / "samples.jsonl").records] == completions
    got = load_generated(tmp_path / "samples.jsonl")
    assert got.samples == len(completions)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"q{c}r"}, ensure_ascii=False) + "\n"
                               for c in LINE_BREAKERS), encoding="utf-8")
    assert [p.text for p in file_prompts(str(prompts), None)] == [f"q{c}r" for c in LINE_BREAKERS]
