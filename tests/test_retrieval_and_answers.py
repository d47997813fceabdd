"""Retrieval of known passages (English and Chinese), speaker handling, and cited answers."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from rag.models import NON_PERSON_SPEAKERS
from rag.events import Retrieved
from rag.retrieve.hybrid import HybridRetriever, UnknownSpeaker
from rag.speakers import Aliases, default_speakers

SOURCE_000 = "000_55e02b4d6beaaafa.txt"


def _raw(source: str) -> str:
    from rag.settings import BUNDLED_CORPUS

    return (BUNDLED_CORPUS / source).read_text(encoding="utf-8")


def _covers(passage, source: str, quote: str) -> bool:
    start = _raw(source).find(quote)
    assert start >= 0, quote
    return passage.chunk.source == source and passage.chunk.char_start < start + len(quote) and start < passage.chunk.char_end


def test_english_question_finds_amandas_own_words_on_sycophancy(pipeline):
    result = pipeline.search("what did Askell say about sycophancy", k=5)
    assert result.plan.speaker == "Amanda Askell"
    # she discusses sycophancy (阿谀奉承) over several turns of 000: the top two are hers, on it
    for passage in result.passages[:2]:
        assert passage.chunk.speaker == "Amanda Askell" and "阿谀奉承" in passage.chunk.text
    assert any(_covers(p, SOURCE_000, "存在语言模型中阿谀奉承的问题") for p in result.passages)


def test_chinese_question_finds_the_chris_olah_summaries(pipeline):
    result = pipeline.search("克里斯·欧拉如何看待神经网络之美？", k=5)
    assert result.plan.speaker == "Chris Olah"
    assert any(p.chunk.subject == "Chris Olah" and p.chunk.speaker in NON_PERSON_SPEAKERS for p in result.passages[:3])


def test_english_question_reaches_a_chinese_only_file(pipeline):
    # only in 002 (Chinese): Dario's ASL levels
    result = pipeline.search("What is ASL-3 in Anthropic's responsible scaling policy?", k=5)
    assert any(p.chunk.source.startswith("002") and "ASL" in p.chunk.text for p in result.passages[:3])


def test_bilingual_passages_are_shown_in_the_language_of_the_question(pipeline):
    en = pipeline.search("Amanda Askell on the history of the constitution as one long document", k=10)
    zh = pipeline.search("阿曼达谈宪法从原则到一份长文档的历史", k=10)
    en_bilingual = [p for p in en.passages if p.chunk.parallel_text]
    zh_bilingual = [p for p in zh.passages if p.chunk.parallel_text]
    assert en_bilingual and zh_bilingual
    assert all(p.shown_text == p.chunk.parallel_text for p in en_bilingual)
    assert all(p.shown_text == p.chunk.text for p in zh_bilingual)


def test_explicit_speaker_filter_wins(pipeline):
    result = pipeline.search("sycophancy", k=5, speaker="阿莫迪")
    assert result.passages and all(p.chunk.speaker == "Dario Amodei" for p in result.passages)
    with pytest.raises(UnknownSpeaker, match="Known speakers"):
        pipeline.search("sycophancy", speaker="Sam Altman")


def test_who_said_questions_are_not_boosted(pipeline):
    plan = pipeline.retriever.plan("Who said that Amanda has talked to Claude more than anyone?")
    assert plan.speaker is None


def test_named_person_is_dropped_from_the_lexical_query(pipeline):
    plan = pipeline.retriever.plan("What did Askell say about sycophancy?")
    assert "askell" not in plan.terms
    assert "阿谀奉承" in plan.terms  # the glossary bridged the English word to the corpus's Chinese


def test_a_named_venue_searches_its_file_without_the_venue_words(pipeline):
    question = "Which philosopher has helped Amanda most in her work, she said at the Stanford office hours?"
    result = pipeline.search(question, k=5)
    assert result.plan.source == "001_b20dc5de5308e2ee.txt"
    assert "stanford" not in result.plan.terms and "office" not in result.plan.terms
    assert all(p.chunk.source == "001_b20dc5de5308e2ee.txt" for p in result.passages)
    # left in, "Stanford office hours" ranked the greetings first ("Yeah, perfect.", the host's
    # welcome) and pushed Amanda's Aristotle answer out of the top 5
    assert any("Aristotle" in (p.chunk.parallel_text or "") for p in result.passages)


@pytest.mark.parametrize(
    "question",
    [
        "阿曼达如何解答疑问？",  # 答疑 inside 解答疑问 is no venue
        "Did Dario study at Stanford?",  # Stanford alone is a university, which Dario names in 002
        "What did Amanda say in CS1530?",  # not CS153
        "What did Dario say at the Stanford office hours about scaling?",  # he was not there
    ],
)
def test_only_a_venue_that_can_answer_filters(pipeline, question):
    assert pipeline.retriever.plan(question).source is None


def test_a_venue_inside_a_persons_alias_names_the_person(pipeline):
    plan = pipeline.retriever.plan("What nickname did the Stanford host give his co-founder?")
    assert plan.speaker == "Host" and plan.source is None
    assert "host" not in plan.terms and "stanford" not in plan.terms


def test_a_venue_whose_file_is_not_indexed_filters_nothing(pipeline):
    retriever = HybridRetriever(pipeline.index, pipeline.embedder, default_speakers(),
                                venues=Aliases([("not_indexed.txt", ["Atlantis summit"])]))
    plan = retriever.plan("What did Dario say at the Atlantis summit about scaling?")
    assert plan.source is None and "Atlantis" in plan.search_text


def test_results_are_diverse(pipeline):
    result = pipeline.search("scaling laws", k=5)
    assert len({p.chunk.id for p in result.passages}) == 5
    assert len({(p.chunk.source, p.chunk.turn_index) for p in result.passages}) >= 3


def test_the_best_passage_lends_the_next_chunk_of_its_turn_a_share_but_not_the_lead(pipeline):
    # Amanda's turn on the optimal rate of failure is cut in two chunks: the question matches the
    # second best, and the line it asks about is in the first (the chunk before it)
    question, quote = "Who thinks that not failing at all is itself a failure?", "因此，我认为不失败本身就是一种失败"
    plain = copy.copy(pipeline.retriever)
    plain.tuning = dataclasses.replace(plain.tuning, continuation_weight=0.0)
    without, with_ = plain.search(question, k=5), pipeline.search(question, k=5)
    assert not any(_covers(p, SOURCE_000, quote) for p in without.passages)
    assert any(_covers(p, SOURCE_000, quote) for p in with_.passages[1:])
    assert with_.passages[0].chunk.id == without.passages[0].chunk.id


def test_neighbour_window_gives_the_question_before_an_answer(pipeline):
    result = pipeline.search("what did Askell say about sycophancy", k=1)
    before, after = pipeline.index.neighbours(result.passages[0].chunk)
    assert before and before[0].speaker == "Lex Fridman"


def test_every_citation_points_at_a_retrieved_passage_and_every_line_cites(pipeline):
    for question in ("what did Askell say about sycophancy", "阿莫迪怎么看规模化定律？",
                     "What does Dario Amodei think about the race to the top?"):
        answer = pipeline.ask(question)
        assert not answer.abstained and answer.citations
        shown = {(p.chunk.source, p.chunk.char_start, p.chunk.char_end) for p in answer.passages}
        for c in answer.citations:
            assert (c.passage.chunk.source, c.passage.chunk.char_start, c.passage.chunk.char_end) in shown
        body = [line for line in answer.text.splitlines()[1:] if line.startswith("- ")]
        assert len(body) == len(answer.citations)
        for n, line in enumerate(body, 1):
            assert line.endswith(f"[{n}]")
            quote = line.split("“", 1)[1].rsplit("”", 1)[0].rstrip("…")
            assert quote[:30] in answer.citations[n - 1].passage.shown_text


def test_a_filler_reply_is_not_quoted_as_the_answer(pipeline):
    """"哦，好问题。" and "Yeah, perfect." are embedded with the question they answer, so they can
    rank first; quoting them answers nothing. They stay among the passages; the answer quotes
    what says something."""
    for question, filler in (("What does Amanda Askell think makes humans special?", "哦，好问题。"),
                             ("What's the name of the instructor who hosted the CS153 office hours with Amanda?",
                              "Yeah, perfect.")):
        answer = pipeline.ask(question)
        assert not answer.abstained and answer.citations, question
        assert any(p.shown_text.strip() == filler for p in answer.passages[:3]), question
        assert filler not in answer.text, question


def test_english_answer_prefers_the_english_original_where_it_exists(pipeline):
    answer = pipeline.ask("What did Amanda Askell say about the Department of Good Judgment?")
    bilingual = [c for c in answer.citations if c.passage.chunk.parallel_text]
    assert bilingual and all(c.passage.shown_text == c.passage.chunk.parallel_text for c in bilingual)


@pytest.mark.parametrize("question", ["What is the capital of Peru?", "Who won the 2022 FIFA World Cup?"])
def test_off_topic_questions_abstain(pipeline, question):
    answer = pipeline.ask(question)
    assert answer.abstained and not answer.citations
    assert "don't cover" in answer.text


@pytest.mark.parametrize(
    ("question", "says"),
    [
        ("What is the capital of Peru?", "They never mention Peru."),
        ("What did Amanda Askell say about Claude 3.7 Sonnet?", "They never mention Claude 3.7."),
        ("珠穆朗玛峰的海拔是多少米？", "访谈中从未提到珠穆朗玛峰。"),
        ("Claude 4 是哪一天正式发布的？", "我找到的段落里没有给出这个日期。"),
        ("红烧肉应该怎么做？", "访谈中从未提到红烧肉。"),
        ("阿曼达今年几岁？", "我找到的段落里没有给出年龄。"),
        ("How much revenue did Anthropic make in 2024?", "The passages I found give no amount of money for it."),
    ],
)
def test_an_abstention_says_what_the_interviews_lack(pipeline, question, says):
    answer = pipeline.ask(question)
    assert answer.abstained and not answer.citations and answer.text.endswith(says)


def test_streamed_answer_equals_the_whole_answer(pipeline):
    question = "what did Askell say about sycophancy"
    events = list(pipeline.ask_stream(question))
    assert isinstance(events[0], Retrieved) and events[0].result.passages  # sources first
    final = events[-1].answer
    deltas = [e.text for e in events[1:-1]]
    assert len(deltas) > 1 and "".join(deltas) == final.text == pipeline.ask(question).text
    assert final.citations and all(c.supported for c in final.citations)  # quotes support themselves
    assert final.claims and all(claim.supported for claim in final.claims)
