"""The discriminator: grouping equal answers, mean and majority, and a debate only over close calls."""

from __future__ import annotations

from trellis.agents.discriminator import Candidate, Discriminator, DiscriminatorConfig

from trellis.models import ScriptedModel


def candidates() -> list[Candidate]:
    return [
        Candidate(node_id="0.0", answer="patch A", reward=0.9),
        Candidate(node_id="0.1", answer="patch A  \r\n", reward=0.7),  # the same answer up to trailing space
        Candidate(node_id="0.2", answer="patch B", reward=0.85),
        Candidate(node_id="0.3", answer="patch C", reward=0.2),
    ]


async def test_mean_and_majority() -> None:
    mean = await Discriminator(None, DiscriminatorConfig(strategy="mean"))("t", candidates())
    assert mean.node_id == "0.2" and len(mean.groups) == 3  # B's mean 0.85 beats A's 0.8
    majority = await Discriminator(None, DiscriminatorConfig(strategy="majority", margin=1.0))("t", candidates())
    assert majority.node_id == "0.0"  # two branches reached A; its best node is taken


async def test_debate_over_the_close_calls_only() -> None:
    model = ScriptedModel(lambda request, i: 'Candidate 0 is right. {"choice": 0, "reason": "r"}')
    decision = await Discriminator(model, DiscriminatorConfig(agents=2, margin=0.1))("t", candidates())
    # C (0.2) is far below the best mean and is not debated; A and B are
    assert decision.groups == [["0.0", "0.1"], ["0.2"]]
    assert len(decision.transcript) == 2 and decision.node_id == "0.0"
    shown = model.requests[0].messages[-1].content
    assert "patch C" not in shown and "Candidate 1" in shown


async def test_a_clear_winner_needs_no_debate() -> None:
    model = ScriptedModel([])
    clear = [Candidate(node_id="0.0", answer="A", reward=0.95), Candidate(node_id="0.1", answer="B", reward=0.3)]
    decision = await Discriminator(model, DiscriminatorConfig(margin=0.1))("t", clear)
    assert decision.node_id == "0.0" and decision.transcript == [] and model.requests == []


async def test_no_usable_vote_falls_back_to_the_mean() -> None:
    model = ScriptedModel(lambda request, i: "I cannot decide.")
    decision = await Discriminator(model, DiscriminatorConfig(margin=1.0))("t", candidates())
    assert decision.node_id == "0.2" and "no reviewer" in decision.reason


async def test_indentation_makes_answers_different() -> None:
    inside = Candidate(node_id="0.0", answer="for x in y:\n    return None\n", reward=0.5)
    outside = Candidate(node_id="0.1", answer="for x in y:\n    pass\nreturn None\n", reward=0.5)
    spaced = Candidate(node_id="0.2", answer="for x in y:\nreturn None\n", reward=0.5)
    decision = await Discriminator(None, DiscriminatorConfig(strategy="mean"))("t", [inside, outside, spaced])
    assert len(decision.groups) == 3


def behaved() -> list[Candidate]:
    """Three answers that pass the examples: two different texts that behave alike, and one apart."""
    return [
        Candidate(node_id="0.0", answer="return s[::-1]", reward=0.84, behaviour="[\"= ''\"]"),
        Candidate(node_id="0.1", answer="return ''.join(reversed(s))", reward=0.8, behaviour="[\"= ''\"]"),
        Candidate(node_id="0.2", answer="return s[::-1] if s else 'x'", reward=0.86, behaviour="[\"= 'x'\"]"),
    ]


async def test_answers_that_behave_alike_win_without_a_debate() -> None:
    model = ScriptedModel([])  # any reviewer call would fail the test: agreement decides
    decision = await Discriminator(model, DiscriminatorConfig(margin=0.1))("t", behaved())
    assert decision.groups == [["0.0", "0.1"], ["0.2"]]
    assert decision.node_id == "0.0" and model.requests == []
    assert decision.reason == "2 distinct answers behave alike on the probe inputs"
    majority = await Discriminator(None, DiscriminatorConfig(strategy="majority"))("t", behaved())
    assert majority.node_id == "0.0"


async def test_a_tie_in_behaviour_goes_to_the_reviewers() -> None:
    tied = behaved()[1:]  # one answer each way
    model = ScriptedModel(lambda request, i: 'Candidate 1 is right. {"choice": 1, "reason": "r"}')
    decision = await Discriminator(model, DiscriminatorConfig(margin=0.1))("t", tied)
    assert len(model.requests) == 2 and decision.node_id == "0.2"


async def test_without_behaviour_equal_text_groups_as_before() -> None:
    plain = [c.model_copy(update={"behaviour": None}) for c in behaved()]
    decision = await Discriminator(None, DiscriminatorConfig(strategy="majority", margin=1.0))("t", plain)
    assert len(decision.groups) == 3


async def test_agreement_outweighs_the_critic_s_margin_and_every_strategy() -> None:
    """The critic valued the lone answer far higher; two different answers that behave alike still
    win, under every strategy (the margin only narrows what reviewers see)."""
    valued = [
        behaved()[0].model_copy(update={"reward": 0.6}),
        behaved()[1].model_copy(update={"reward": 0.6}),
        behaved()[2].model_copy(update={"reward": 0.95}),
    ]
    for strategy in ("mean", "majority", "debate"):
        decision = await Discriminator(ScriptedModel([]), DiscriminatorConfig(strategy=strategy, margin=0.1))(
            "t", valued
        )
        assert decision.node_id in ("0.0", "0.1"), strategy
        assert decision.reason == "2 distinct answers behave alike on the probe inputs"


async def test_the_same_answer_twice_is_no_agreement() -> None:
    twice = [
        Candidate(node_id="0.0", answer="return s[::-1]", reward=0.6, behaviour="A"),
        Candidate(node_id="0.1", answer="return s[::-1]", reward=0.6, behaviour="A"),
        Candidate(node_id="0.2", answer="return s[::-1] if s else 'x'", reward=0.95, behaviour="B"),
    ]
    decision = await Discriminator(None, DiscriminatorConfig(strategy="mean"))("t", twice)
    assert decision.node_id == "0.2"  # one distinct answer each way: the mean decides


async def test_answers_that_crash_give_way_to_a_probed_one_that_does_not() -> None:
    """Two groups of two agree equally: the one whose answers do not crash on a smallest input wins
    without reviewers. Among lone answers, a crashing one is left out even when valued higher, and a
    larger group that agrees on a crash loses to a lone answer that does not crash."""
    crashing = [
        Candidate(node_id="0.0", answer="first = s[0]\nreturn s[::-1]", reward=0.9, behaviour="C", crashes=1),
        Candidate(node_id="0.1", answer="s[0]\nreturn s[::-1]", reward=0.9, behaviour="C", crashes=1),
    ]
    sound = [
        Candidate(node_id="0.2", answer="return s[::-1]", reward=0.7, behaviour="S"),
        Candidate(node_id="0.3", answer="return ''.join(reversed(s))", reward=0.7, behaviour="S"),
    ]
    model = ScriptedModel([])  # any reviewer call would fail the test
    decision = await Discriminator(model, DiscriminatorConfig(margin=1.0))("t", [*crashing, *sound])
    assert decision.node_id in ("0.2", "0.3") and model.requests == []
    lone = await Discriminator(model, DiscriminatorConfig(margin=1.0))("t", [crashing[0], sound[0]])
    assert lone.node_id == "0.2" and model.requests == []
    larger = await Discriminator(model, DiscriminatorConfig(margin=1.0))("t", [*crashing, sound[0]])
    assert larger.node_id == "0.2" and model.requests == []
    # an answer nobody probed (it may fail an example) is not preferred to one that only crashes
    unprobed = Candidate(node_id="0.4", answer="return s", reward=0.3)
    mean = await Discriminator(None, DiscriminatorConfig(strategy="mean"))("t", [crashing[0], unprobed])
    assert mean.node_id == "0.0"


async def test_an_answer_and_its_own_repair_agree_as_one() -> None:
    """Two different answers of one lineage (an answer and its repair) behave alike: that is one
    voice, so the lone answer from another lineage ties with them and the reviewers settle it."""
    repaired = [
        Candidate(node_id="0.0", answer="return s[::-1]", reward=0.6, behaviour="A", lineage="0.0"),
        Candidate(node_id="0.0.0", answer="return s[::-1]  # fixed", reward=0.6, behaviour="A", lineage="0.0"),
        Candidate(node_id="0.1", answer="return s[::-1] if s else 'x'", reward=0.6, behaviour="B", lineage="0.1"),
    ]
    model = ScriptedModel(lambda request, i: 'Candidate 1 is right. {"choice": 1, "reason": "r"}')
    decision = await Discriminator(model, DiscriminatorConfig(margin=1.0))("t", repaired)
    assert len(model.requests) == 2 and decision.node_id == "0.1"
    independent = [c.model_copy(update={"lineage": c.node_id}) for c in repaired]
    agreed = await Discriminator(ScriptedModel([]), DiscriminatorConfig(margin=1.0))("t", independent)
    assert agreed.node_id in ("0.0", "0.0.0") and agreed.reason.startswith("2 distinct answers")
