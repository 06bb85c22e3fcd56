"""A turn marker the vocabulary lacks as one token (tooltune's ChatML on Gemma) still ends the turn."""

from __future__ import annotations

import torch

from tooltune.runtime.generate import _TurnEnd


class CharTokenizer:
    """One token per character; no ChatML special tokens; no template of its own (built-in used)."""

    chat_template = None

    def get_vocab(self):
        return {chr(i): i for i in range(32, 127)}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)


def test_textual_end_of_turn_marker_stops_the_row_and_is_cut():
    tokenizer = CharTokenizer()
    prompt = [ord(c) for c in "Q: "]
    turn_end = _TurnEnd(tokenizer, len(prompt), stop_ids=[], tags=None, started=0.0)
    assert turn_end.text_stops == ["<|im_end|>", "<|im_start|>"]  # the built-in template writes both; the vocabulary has neither
    still = torch.tensor([prompt + [ord(c) for c in "Paris<|im_"]])
    assert not bool(turn_end(still, None)[0])
    ended = torch.tensor([prompt + [ord(c) for c in "Paris<|im_end|>"]])
    assert bool(turn_end(ended, None)[0]) and turn_end.cut(0, "Paris<|im_end|>\n<|im_start|>user") == "Paris"
