"""One judged record -> one chat SFT conversation, as the seed converts them, or the reason it is dropped.

    {"messages": [{"role": "user", "content": <the problem prompt>},
                  {"role": "assistant", "content": "<think>\\n" + analysis + "\\n</think>" + final}]}

gpt-oss (harmony) records convert as the seed converts them: the user text between `<|start|>user<|message|>` and
the next `<|end|>` of model_input, the analysis and final channels of the generation. Records of think-style models
(`<think>...</think>` in the answer) convert to the same shape.
"""
from reasonlite.jsonl import DataError
from reasonlite.prompts import infer_prompt

# Harmony (gpt-oss) markup. The prompt ends with `<|start|>assistant`, so the generation opens with `<|channel|>`.
H_USER, H_END, H_RETURN = "<|start|>user<|message|>", "<|end|>", "<|return|>"
H_TURN, H_MESSAGE = "<|start|>assistant<|channel|>", "<|message|>"
HARMONY_MARKS = ("<|start|>", "<|channel|>", H_MESSAGE, H_END)
# End-of-text strings a server may leave at the end of a generation (vLLM drops stop strings, not always EOS text).
EOS_TEXTS = (H_RETURN, "<|im_end|>", "<|endoftext|>", "<|eot_id|>")

# Drop reasons, in the order the funnel reports them.
ERROR, WRONG, MISMATCH, TRUNCATED = "judge null (error)", "judge false (wrong)", "format mismatch", "truncated"
CONTAMINATED, DUPLICATE, TOO_LONG = "contaminated", "duplicate answer", "too long"
OUT_OF_BAND, OVER_CAP = "pass rate outside the band", "over the per-problem cap"  # per problem, after pass 1


def _strip_eos(text):
    for eos in EOS_TEXTS:
        if text.endswith(eos):
            return text[: -len(eos)]
    return text


def harmony_parts(model_input, answer):
    """(analysis, final) of a gpt-oss generation, or a drop reason.

    The seed's rule: the full output split on `<|start|>assistant<|channel|>` has exactly 3 parts (the prompt, one
    analysis message, one final message). Checked more strictly here: the channels must be analysis then final, and
    no other harmony message may hide inside them, since the seed would have trained on such leftovers verbatim.
    """
    parts = (model_input + answer).split(H_TURN)
    if len(parts) == 2 and parts[1].startswith("analysis" + H_MESSAGE) and H_END not in parts[1]:
        return TRUNCATED  # ran out of tokens while still reasoning
    if len(parts) != 3:
        return MISMATCH
    head, final_part = parts[1], parts[2]
    if not head.startswith("analysis" + H_MESSAGE) or not head.endswith(H_END):
        return MISMATCH
    if not final_part.startswith("final" + H_MESSAGE):
        return MISMATCH
    analysis = head[len("analysis" + H_MESSAGE): -len(H_END)]
    final = _strip_eos(final_part[len("final" + H_MESSAGE):])
    if any(mark in analysis or mark in final for mark in HARMONY_MARKS):
        return MISMATCH
    return analysis, final


def think_parts(answer):
    """(reasoning, final) of a think-style generation (`<think>...</think>final`), or a drop reason.

    The opening tag may sit in the prompt instead (templates that prefill `<think>\\n`), so only the closing tag is
    required; a generation that opened a think block and never closed it ran out of tokens.
    """
    closes, opens = answer.count("</think>"), answer.count("<think>")
    if closes == 0:
        return TRUNCATED if opens else MISMATCH
    if closes > 1 or opens > 1:
        return MISMATCH
    reasoning, final = answer.split("</think>")
    reasoning = reasoning.lstrip()
    if opens:
        if not reasoning.startswith("<think>"):
            return MISMATCH  # text before the think block: not one reasoning and one answer
        reasoning = reasoning[len("<think>"):]
    return reasoning.strip("\n"), _strip_eos(final)


def user_text(record, harmony):
    if harmony:
        return record["model_input"].split(H_USER, 1)[1].split(H_END, 1)[0].strip()
    chatml = record["model_input"].split("<|im_start|>user\n", 1)
    if len(chatml) == 2 and "<|im_end|>" in chatml[1]:
        return chatml[1].split("<|im_end|>", 1)[0].strip()
    # Any other template: the user text infer.py built for this record's problem.
    return infer_prompt(record["prompt"]).strip()


def check_record(record, where):
    if "judge" not in record:
        raise DataError(f"{where}: no field 'judge'; this is not judged data (pass a file from answer_judge/ or "
                        "answer_judge_vote/, written by infer.py -m judge or -m judge_vote)")
    if record["judge"] not in (True, False, None):
        raise DataError(f"{where}: field 'judge' must be true, false or null, got {record['judge']!r}")
    if not isinstance(record.get("model_input"), str):
        raise DataError(f"{where}: field 'model_input' is missing or not a string")
    answer = record.get("answer")
    if answer is None and isinstance(record.get("model_output"), str):
        answer = record["model_output"][len(record["model_input"]):]  # seed-style records: output = input + answer
    if record["judge"] is not None and not isinstance(answer, str):
        raise DataError(f"{where}: field 'answer' is missing or not a string")
    harmony = H_USER in record["model_input"]
    if not harmony and not isinstance(record.get("prompt"), str) and "<|im_start|>user\n" not in record["model_input"]:
        raise DataError(f"{where}: field 'prompt' is missing or not a string")
    return answer, harmony


def convert(record, where):
    """(None, messages) for a record to keep, else (why it is dropped, None). The judge is asked first, as the seed
    does, so a wrong answer counts as wrong whatever its format."""
    answer, harmony = check_record(record, where)
    if record["judge"] is None:
        return ERROR, None
    if record["judge"] is False:
        return WRONG, None
    parts = harmony_parts(record["model_input"], answer) if harmony else think_parts(answer)
    if isinstance(parts, str):
        return parts, None
    if record.get("finish_reason") == "length":  # records that carry it can show a final answer cut off
        return TRUNCATED, None
    return None, [{"role": "user", "content": user_text(record, harmony)},
                  {"role": "assistant", "content": "<think>\n" + parts[0] + "\n</think>" + parts[1]}]
