"""Follow-ups rewritten to stand alone by the rule (no LLM), and questions that stand alone left
as they are. The LLM condenser is exercised in tests/test_llm_answers.py."""

from __future__ import annotations

import pytest

from rag.retrieve.followups import Condenser
from rag.speakers import default_speakers

RLHF = [{"role": "user", "content": "What did Dario Amodei say about RLHF?"},
        {"role": "assistant", "content": "Dario Amodei: “…” [1]"}]


@pytest.fixture(scope="module")
def condenser() -> Condenser:
    return Condenser(default_speakers())


@pytest.mark.parametrize("question, searched", [
    ("and what did Askell say about it?", "What did Amanda Askell say about RLHF?"),
    ("What about Olah?", "What did Chris Olah say about RLHF?"),
    ("阿斯克尔呢？", "What did Amanda Askell say about RLHF?"),
    ("why?", "What did Dario Amodei say about RLHF? why?"),
    ("他为什么这么认为？", "What did Dario Amodei say about RLHF? 他为什么这么认为？"),
])
def test_follow_ups_are_rewritten_by_rule(condenser, question, searched):
    assert condenser.condense(question, RLHF) == (searched, "rule")


@pytest.mark.parametrize("question", [
    "What did Askell say about sycophancy?",
    "What is RLHF and why does it matter?",
    "克里斯·欧拉如何看待神经网络之美？",
])
def test_questions_that_stand_alone_are_left_alone(condenser, question):
    assert condenser.condense(question, RLHF) == (question, None)


def test_no_history_means_no_rewrite(condenser):
    assert condenser.condense("and what did Askell say about it?", []) == ("and what did Askell say about it?", None)


def test_a_chain_of_follow_ups_keeps_the_topic(condenser):
    history = RLHF + [{"role": "user", "content": "and Askell?"}, {"role": "assistant", "content": "…"}]
    assert condenser.condense("what about Olah?", history) == ("What did Chris Olah say about RLHF?", "rule")


def test_a_person_referred_to_but_not_named_comes_from_the_conversation(condenser):
    history = [{"role": "user", "content": "Why does Dario Amodei think RLHF works so well?"}]
    assert condenser.condense("Does he think it makes the model smarter?", history) == (
        "Why does Dario Amodei think RLHF works so well? Does he think it makes the model smarter?", "rule")
