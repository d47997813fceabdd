"""Abstention signals: names, model versions, dates, amounts of money, ages, counts, titles and
whole topics the interviews never mention; and what an answer quotes, which those signals read."""

from __future__ import annotations

import pytest

from rag.lexicon import tokenize
from rag.models import Chunk, Passage
from rag.retrieve.coverage import best_quote, foreign_topic, missing_answer_type, unknown_names
from rag.speakers import default_speakers
from rag.text import has_cjk


@pytest.mark.parametrize(
    ("question", "unknown"),
    [
        ("What is the capital of Peru?", ["Peru"]),
        ("What did Amanda Askell say about Claude 3.7 Sonnet's extended thinking?", ["Claude 3.7"]),
        # common words the interviews never use are not names: colloquial questions are full of them
        ("Anthropic在2025年的年化收入是多少？", []),
        ("网上老有人吐槽Claude越用越傻，是不是Anthropic背地里偷偷给模型动了手脚？", []),
        ("写提示词这事儿，阿曼达觉得什么时候才真值得下死功夫去抠？", []),
        ("珠穆朗玛峰的海拔是多少米？", ["珠穆朗玛峰"]),
        ("阿莫迪怎么看待中国的AI发展？", ["中国"]),  # the interviews never mention China
        # mentioned, in either word order or glued to Chinese: "Sonnet 3.5", "认为Claude 4会"
        ("What did Dario say about Claude 3.5 Sonnet?", []),
        ("Claude 4 会比 Claude 3 强多少？", []),
        ("In 2 years, will models reach ASL-3?", []),
        ("阿莫迪怎么看规模化定律？", []),
        ("What did Dario say about Gemini 2.5?", ["Gemini"]),  # named once, not again with its version
        # a model's name and a capitalised word they never put after it is a product they never mention
        ("Claude Code 是什么时候推出的？", ["Claude Code"]),
        ("What did Dario say about Claude Code?", ["Claude Code"]),
        ("What does Dario say about Claude Opus?", []),  # a model the interviews name
        # a capitalised word next to a number is not a model version
        ("Give 3 examples of what Amanda says about character", []),
        ("Name 2 risks Dario worries about", []),
        # verbs and idioms are not names, even ones the corpus never uses
        ("Claude会不会谄媚讨好？", []),
        ("模型为何胡编乱造？", []),
        ("用系统提示词来修正模型行为有什么优点？", []),  # jieba tags 修正 as a person's name
        ("阿曼达如何看待模型的福利问题？", []),  # … and 福利 as a place
        ("英伟达的芯片为什么这么贵？", ["英伟达"]),  # jieba cuts it into 英/伟达
        ("明天上海会下雨吗？", ["上海"]),  # only the name, not its unknown neighbours
        # a word of a glossary phrase is the interviews' own ("Scottish accent", "Golden Gate Bridge")
        ("Who joked that people with Scottish accents can get away with saying rude stuff?", []),
        ("Why did the Golden Gate Bridge feature make Claude obsessed?", []),
    ],
)
def test_unknown_names_are_what_the_corpus_never_mentions(pipeline, question, unknown):
    assert unknown_names(question, pipeline.index, default_speakers()) == unknown


@pytest.mark.parametrize(
    ("question", "foreign"),
    [
        ("红烧肉应该怎么做？", ["红烧肉"]),  # 应该 and 做 are in every other passage: no topic of theirs
        ("How do I bake sourdough bread?", ["bake", "sourdough", "bread"]),
        # one distinctive word keeps a question on topic, however colloquial the rest
        ("阿曼达背地里怎么看Claude？", []),
        ("写提示词这事儿，阿曼达觉得什么时候才真值得下死功夫去抠？", []),
        ("网上老有人吐槽Claude越用越傻，是不是Anthropic背地里偷偷给模型动了手脚？", []),
        ("Why does the model flatter people so much?", []),
        # the corpus's own topic words are in a fifth of its passages, and still distinctive
        ("Is Claude overhyped?", []),
        ("模型会不会失控？", []),
        # a word the corpus never uses, whose meaning it has in other words (拍马屁: to flatter, 奉承)
        ("为什么它老是拍马屁？", []),
    ],
)
def test_an_off_topic_question_has_no_distinctive_word_of_the_interviews(pipeline, question, foreign):
    assert foreign_topic(question, pipeline.index, default_speakers()) == foreign


@pytest.mark.parametrize(
    ("question", "evidence", "missing"),
    [
        ("Claude 4 是哪一天正式发布的？", ["我预计Claude 4会在明年发布"], "date"),
        ("Claude 4 是哪一天正式发布的？", ["Claude 4 于5月22日发布"], None),
        ("On what day was the model released?", ["It came out on March 4, to little fanfare."], None),
        ("On what day was the model released?", ["It came out on the 4th of March."], None),
        ("What year will it arrive?", ["Maybe next year."], None),
        ("By what year could powerful AI arrive?", ["如果你相信这些曲线，我们会在2026年或2027年达到那里"], None),
        ("By what year could powerful AI arrive?", ["It depends on the curves."], "year"),
        ("What did Dario say about scaling?", ["It depends on the curves."], None),
        # money: "how much" plus a word saying the amount is money, answered only by a currency
        ("How much did training the model cost?", ["It was very expensive."], "money"),
        ("How much did training the model cost?", ["我认为明年，我们将达到数十亿美元的规模。"], None),
        ("How much did training the model cost?", ["Roughly $1 billion."], None),
        ("模型训练要花多少钱？", ["成本非常高。"], "money"),
        ("模型训练要花多少钱？", ["大概要花三十亿元。"], None),
        ("How much did the benchmark score go up?", ["It went from 3% to about 50%."], None),  # not money
        ("What did Dario say about the cost of training?", ["It was very expensive."], None),  # no amount asked
        ("Claude API 有多贵？", ["它又快又便宜。"], "money"),
        # words that only sometimes mean money do not make a money question
        ("How much time does Amanda spend on a prompt?", ["She iterates on it many times."], None),
        ("How much attention has Anthropic paid to interpretability?", ["It matters a lot."], None),
        ("写一个好提示词要花多少时间？", ["要反复迭代很多次。"], None),
        ("写提示词的时间成本有多少？", ["要反复迭代很多次。"], None),  # a cost in time
        ("阿曼达花了多少心思来确定价值观？", ["她想了很久。"], None),  # 确定价值观 holds no 定价
        ("模型对不同年龄的用户表现一样吗？", ["不一样。"], None),  # mentions age, does not ask for one
        ("他二十多岁时在做什么？多大了？", ["他二十多岁时在Google Brain。"], None),
        ("How old was she?", ["She joined at age 30."], None),
        ("How old was he then?", ["In the age of AI everything changes."], "age"),  # "age" is not an age
        ("克里斯今年多大了？", ["他很年轻的时候就开始做研究了。"], "age"),
        ("How old was he when he started?", ["He was 19 years old."], None),
        ("他几岁开始写代码？", ["他12岁就开始写代码了。"], None),
        # when something came out: a date, a year or a month answers it
        ("When did Amanda publish her blog post about failure?", ["She wrote a post about it."], "when"),
        ("When was the interview published?", ["公开发表于2024年11月11日。"], None),
        ("Claude 3 是什么时候发布的？", ["三月份，Claude 3 发布了。"], None),
        ("Claude Code 是什么时候推出的？", ["我们并没有试图自己开发这样的IDE。"], "when"),
        ("When did Dario first get into AI?", ["He worked on speech recognition."], None),  # not a release
    ],
)
def test_an_answer_type_asked_for_must_be_in_the_evidence(question, evidence, missing):
    assert missing_answer_type(question, evidence) == missing


@pytest.mark.parametrize(
    "question",
    ["Claude 4 是哪一天正式发布的？", "What did Amanda Askell say about Claude 3.7 Sonnet?", "阿莫迪怎么看待中国的AI发展？"],
)
def test_near_miss_questions_abstain(pipeline, question):
    answer = pipeline.ask(question)
    assert answer.abstained and not answer.citations



def test_a_name_asked_for_must_be_in_what_the_answer_would_quote(pipeline):
    """She named a bike, and says so, but never says the name: quoting her would cite a passage
    for a fact it does not state. A name the interviews do give is answered."""
    near_miss = pipeline.ask("What name did Amanda give the bike that got stolen?")
    assert near_miss.abstained and near_miss.query.missing_answer_type == "name"
    assert "no name" in near_miss.text
    answered = pipeline.ask("What was the title of Dario's essay about how AI could make the world better?")
    assert not answered.abstained and answered.query.missing_answer_type is None


def test_a_count_asked_for_must_be_stated_beside_the_question_words(pipeline):
    """The interviews compare Sonnet 3.5 with Sonnet 3 and Opus 3 and never count its parameters:
    version numbers, years and spans of time ("一两天") are no count. A count they give, in a
    sentence of the passages that an answer would not quote ("雇佣10名律师"), is answered."""
    near_miss = pipeline.ask("How many parameters does Claude 3.5 Sonnet have?")
    assert near_miss.abstained and near_miss.query.missing_answer_type == "count"
    assert "no number" in near_miss.text
    for question in ("How many lawyers did Dario say a company might complain about having to hire because of regulation?",
                     "Amanda 刚进 Anthropic 的时候公司才几个人？"):
        answered = pipeline.ask(question)
        assert not answered.abstained and answered.query.missing_answer_type is None, question
    # in the clause that names what is counted: "一千名员工" counts no members of the trust, and
    # a clause about Dario counts nothing the question asks about Dario
    for question in ("长期利益信托里一共有几位成员？", "达里奥说的长期利益信托有几个人，都是谁？"):
        near_miss = pipeline.ask(question)
        assert near_miss.abstained and near_miss.query.missing_answer_type == "count", question


def test_a_title_asked_for_must_be_quoted_as_a_title(pipeline):
    """Amanda says where she studied and what her thesis was about, never its title: "Oxford" is
    a name, not a title."""
    near_miss = pipeline.ask("What's the actual title of Amanda's PhD dissertation?")
    assert near_miss.abstained and near_miss.query.missing_answer_type == "name"


@pytest.mark.parametrize("text, weight, quoted", [
    ("机械可解释性：深入神经网络的内部\n如何理解这些系统？这就是机械可解释性研究要解决的核心问题。", 1.0,
     "这就是机械可解释性研究要解决的核心问题。"),
    ("Interpretability: inside the network\nInterpretability is reverse engineering the weights into algorithms.", 1.0,
     "Interpretability is reverse engineering the weights into algorithms."),
    # a timeline line is a heading too
    ("1:17:52 - Chris Olah - 机械可解释性\n他认为机械可解释性就是对权重做逆向工程。", 1.0, "他认为机械可解释性就是对权重做逆向工程。"),
    # a short statement alone in its paragraph is no heading
    ("机械可解释性很重要。\n神经网络是培育出来的，机械可解释性研究它们。", 1.0, "机械可解释性很重要。"),
    # a heading that alone matches (a weak English glossary term) is still quoted over a sentence that does not
    ("机械可解释性：深入神经网络的内部\n神经网络是培育出来的，而不是编写出来的。", 0.35, "机械可解释性：深入神经网络的内部"),
], ids=["zh", "en", "timeline", "statement", "only-the-heading-matches"])
def test_an_answer_quotes_a_statement_not_the_heading_above_it(text, weight, quoted):
    """A heading shares the question's words and states nothing; the sentence under it is quoted."""
    chunk = Chunk(id="c1", source="x.txt", title="Test", speaker="Editorial", subject="Chris Olah",
                  language="zh" if has_cjk(text) else "en", section=None, text=text, char_start=0,
                  char_end=len(text), turn_index=0)
    terms = {token: weight for token in tokenize("机械可解释性 interpretability")}
    assert best_quote(Passage(chunk, 1.0, 1, shown_text=text), terms)[0] == quoted
