"""QAWorld: its tools, the turn limit, states that restore anywhere, and exact-match / F1 rewards."""

from __future__ import annotations

import pytest
from trellis.envs.qa import (
    MAX_TURNS,
    PassageIndex,
    QAState,
    QAWorld,
    exact_match,
    f1_score,
    generate_corpus,
    normalize_answer,
    qa_worlds,
)

from trellis.errors import UserError
from trellis.tree import Action, JudgeVerdict, Step
from trellis.world import World

CORPUS = generate_corpus()
INDEX = PassageIndex(CORPUS.passages)
BRIDGE = next(i for i, q in enumerate(CORPUS.questions) if q.question.startswith("In which town was the founder"))


def search(query: str) -> Action:
    return Action(tool="search", args={"query": query})


def answer(text: str) -> Action:
    return Action(tool="answer", args={"text": text})


def world(question: int = BRIDGE, **options: int) -> QAWorld:
    return QAWorld(CORPUS, question, index=INDEX, **options)


async def test_is_a_world_and_describes_its_task() -> None:
    qa = world()
    assert isinstance(qa, World)
    assert [tool.name for tool in qa.tools] == ["search", "answer"]
    first = await qa.reset()
    assert CORPUS.questions[BRIDGE].question in first.text and f"{MAX_TURNS} searches" in first.text
    assert first.data["question_id"] == CORPUS.questions[BRIDGE].id


async def test_search_lists_passages_with_ids_and_records_them() -> None:
    qa = world()
    await qa.reset()
    question = CORPUS.questions[BRIDGE]
    organisation = CORPUS.passage(question.supporting[0])
    observation = await qa.step(search(organisation.title))
    assert not observation.is_error
    passages = observation.data["passages"]
    assert len(passages) == 3 and passages[0]["id"] == organisation.id
    assert {"id", "title", "text", "score", "rank"} <= set(passages[0])
    for passage in passages:
        assert f"[{passage['id']}] {passage['title']}\n{passage['text']}" in observation.text
    assert observation.data["turn"] == 1 and observation.data["turns_left"] == MAX_TURNS - 1
    assert f"{MAX_TURNS - 1} searches left" in observation.text
    # what to do with what came back: answer from it, or search for the name it gives
    assert "If a passage above answers the question, reply with answer" in observation.text
    assert "search for that name" in observation.text


async def test_a_search_that_finds_nothing_says_to_try_other_words_not_to_answer_from_it() -> None:
    qa = world()
    await qa.reset()
    observation = await qa.step(search("zzzqqq"))
    assert not observation.data["passages"] and "Try other words" in observation.text
    assert "passage above" not in observation.text


async def test_turn_limit_then_only_answer() -> None:
    qa = world(max_turns=2)
    await qa.reset()
    assert not (await qa.step(search("Institute founder"))).is_error
    last = await qa.step(search("town region"))
    assert "last search" in last.text and last.data["turns_left"] == 0
    state = await qa.snapshot()
    refused = await qa.step(search("one more"))
    assert refused.is_error and "no searches left" in refused.text
    assert await qa.snapshot() == state  # a refused search changes nothing
    done = await qa.step(answer(CORPUS.questions[BRIDGE].answers[0]))
    assert (
        done.terminal == "finished"
        and done.patch == done.data["answer"]
        and done.data["answer"] == CORPUS.questions[BRIDGE].answers[0]
    )
    after = await qa.step(search("again"))
    assert after.is_error and "already answered" in after.text


async def test_bad_actions_are_errors_that_spend_nothing() -> None:
    qa = world()
    await qa.reset()
    start = await qa.snapshot()
    for action in (
        Action(tool="view_file", args={"path": "a.py"}),
        Action(tool="search", args={}),
        search("the of which"),
        answer("  "),
    ):
        observation = await qa.step(action)
        assert observation.is_error, action
        assert await qa.snapshot() == start
    nothing = await qa.step(search("zzzz qqqq"))
    assert not nothing.is_error and nothing.data["passages"] == [] and "No passage matches" in nothing.text


async def test_snapshot_restore_across_worlds_and_questions() -> None:
    first, second = qa_worlds(CORPUS, BRIDGE, 2, index=INDEX)
    await first.reset()
    root = await first.snapshot()
    await first.step(search(CORPUS.passage(CORPUS.questions[BRIDGE].supporting[0]).title))
    searched = await first.snapshot()
    await first.step(answer("Somewhere"))
    answered = await first.snapshot()
    assert len({root, searched, answered}) == 3
    state = QAState.parse(answered)
    assert state.question == CORPUS.questions[BRIDGE].id and state.turns == 1 and state.answer == "Somewhere"
    # another world (a resumed run, a parallel expansion) restores the same state from the id alone
    await second.restore(searched)
    assert await second.snapshot() == searched
    assert not (await second.step(answer(CORPUS.questions[BRIDGE].answers[0]))).is_error
    assert (await second.reward()).value == 1.0
    await second.restore(answered)
    assert (await second.reward()).value == 0.0 and await second.patch() == "Somewhere"
    assert await second.patch(root) == ""
    # restoring a state of another question of the corpus moves the world there
    other = QAState(question=CORPUS.questions[0].id).state_id()
    await second.restore(other)
    assert second.question.id == CORPUS.questions[0].id
    # the same passages reached by other words are the same state
    title = CORPUS.passage(CORPUS.questions[BRIDGE].supporting[0]).title
    await first.restore(root)
    await first.step(search(f"the {title}?"))
    assert await first.snapshot() == searched
    await first.restore(root)
    await first.step(search(title.upper()))
    assert await first.snapshot() == searched


async def test_restore_refuses_ids_that_are_not_states() -> None:
    qa = world()
    with pytest.raises(UserError, match="not a state of a QA world"):
        await qa.restore("4b825dc642cb6eb9a060e54bf8d69288fbee4904")
    forged = QAState(question=CORPUS.questions[0].id, answer="x").state_id()
    tampered = forged[:-4] + ("AAAA" if not forged.endswith("AAAA") else "BBBB")
    with pytest.raises(UserError):
        await qa.restore(tampered)
    with pytest.raises(UserError, match="has no question"):
        await qa.restore(QAState(question="q9999").state_id())


async def test_reward_is_exact_match_with_f1_in_details() -> None:
    qa = world()
    await qa.reset()
    unanswered = await qa.reward()
    assert unanswered.value == 0.0 and unanswered.summary == "no answer given"
    gold = CORPUS.questions[BRIDGE].answers[0]
    await qa.step(answer(f"The {gold.lower()}."))
    right = await qa.reward()
    assert right.value == 1.0 and right.resolved and right.details["f1"] == 1.0
    await qa.reset()
    await qa.step(answer(f"{gold} town"))
    partial = await qa.reward()
    assert partial.value == 0.0 and not partial.resolved
    assert partial.details["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert partial.details["gold"] == [gold] and partial.details["type"] == "bridge"


def test_normalisation_em_and_f1() -> None:
    assert normalize_answer("  The  Vantrel-Institute, of Brell! ") == "vantrelinstitute of brell"
    assert normalize_answer("An apple a day") == "apple day"
    assert exact_match("the Nuthmeisk Region", ["Nuthmeisk", "Nuthmeisk region"]) == 1.0
    assert exact_match("Nuthmeisk regions", ["Nuthmeisk", "Nuthmeisk region"]) == 0.0
    # F1: best alias; precision 1/2 and recall 1 -> 2/3
    assert f1_score("Orvena Thalk", ["Thalk"]) == pytest.approx(2 / 3)
    assert f1_score("Orvena Thalk", ["Dasko Thalk", "Orvena Thalk"]) == 1.0
    assert f1_score("Brell", ["Kor"]) == 0.0
    # yes/no answers share no partial credit (HotpotQA's rule)
    assert f1_score("no", ["no way"]) == 0.0 and f1_score("yes", ["yes"]) == 1.0
    assert f1_score("", ["x"]) == 0.0 and exact_match("", ["x"]) == 0.0


async def test_judge_reward_of_a_trajectory_on_the_worlds_question() -> None:
    qa = world()
    await qa.reset()
    question = CORPUS.questions[BRIDGE]
    steps = []
    # the organisation's passage does not hold the birthplace; the founder's does. Each verdict comes
    # with the reply after the observation: the second search judges the first one's result, the
    # answer judges the second's.
    verdicts = (None, JudgeVerdict(keep=False))
    for passage_id, verdict in zip((question.supporting[0], question.supporting[1]), verdicts, strict=True):
        action = search(CORPUS.passage(passage_id).title)
        steps.append(Step(action=action, observation=await qa.step(action), judge=verdict))
    unanswered = qa.judge_reward(steps)
    assert unanswered.useful == [False, True] and unanswered.per_step == pytest.approx([0.3, 0.0])
    action = answer(question.answers[0])
    steps.append(Step(action=action, observation=await qa.step(action), judge=JudgeVerdict(keep=True)))
    answered = qa.judge_reward(steps)
    assert answered.per_step == pytest.approx([0.4, 0.4]) and answered.total == pytest.approx(0.8)
    assert qa.judge_rewards(steps) == pytest.approx({1: 0.4, 2: 0.4})  # by the judging step's index


async def test_revert_goes_back_to_an_earlier_state_even_after_the_answer() -> None:
    plain = world()
    await plain.reset()
    assert (await plain.step(Action(tool="revert", args={"state": "start"}))).is_error  # not offered by default
    qa = world(revert=True)
    await qa.reset()
    await qa.step(search("founder"))
    after_one = await qa.snapshot()
    await qa.step(search("born"))
    await qa.step(answer("Nowhere"))
    back = await qa.step(Action(tool="revert", args={"state": after_one}))
    left = MAX_TURNS - 1
    assert back.text == f"reverted to the state after search 1: 1 search and the answer undone; {left} searches left"
    assert await qa.snapshot() == after_one and qa.state.answer is None
    assert not (await qa.step(search("born"))).is_error  # searching again, from there
    named = await qa.step(Action(tool="revert", args={"state": "after search 1"}))  # as a model would say it
    assert named.text.startswith("reverted to the state after search 1: 1 search undone")
    assert await qa.snapshot() == after_one
    start = await qa.step(Action(tool="revert", args={"state": "start"}))
    assert start.text.startswith("reverted to the start: 1 search undone") and qa.state.turns == 0


async def test_revert_never_reaches_a_state_the_world_was_not_in() -> None:
    qa = world(revert=True)
    await qa.reset()
    await qa.step(search("founder"))
    gold = CORPUS.questions[BRIDGE].answers[0]
    # an answer nobody gave, or searches nobody made, written into a well-formed state id
    answered = QAState(question=CORPUS.questions[BRIDGE].id, seen=qa.state.seen, answer=gold)
    for made_up in (answered.state_id(), QAState(question=qa.state.question, seen=(("p0001",),)).state_id()):
        refused = await qa.step(Action(tool="revert", args={"state": made_up}))
        assert refused.is_error and "not an earlier state of this question" in refused.text
    ahead = await qa.step(Action(tool="revert", args={"state": "after search 3"}))
    assert ahead.is_error and "only 1 search was made" in ahead.text
    other = world(0 if BRIDGE else 1, revert=True)
    await other.reset()
    assert (await qa.step(Action(tool="revert", args={"state": await other.snapshot()}))).is_error
    assert qa.state.answer is None and (await qa.reward()).value == 0.0
