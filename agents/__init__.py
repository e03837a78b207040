"""The agent roles: solver, critic (value), reflection, discriminator, judge and first-error locator.

Each is a plain async callable over a `ChatModel`; the search graph uses them as its nodes' workers
and anyone can call them from a graph of their own. `trellis.agents.roles` has the Protocol of each
role (what the search asks of it), `trellis.agents.nodes` makes each a LangGraph node on its own.
"""

from trellis.agents.critic import Critic, CriticConfig, Evaluation
from trellis.agents.discriminator import Candidate, Decision, Discriminator, DiscriminatorConfig
from trellis.agents.first_error import FirstError, FirstErrorConfig, FirstErrorLocator
from trellis.agents.judge import Judge
from trellis.agents.reflection import Reflector
from trellis.agents.roles import DiscriminatorRole, JudgeRole, ReflectorRole, SolverRole, ValueRole
from trellis.agents.solver import Proposal, Solver, SolverConfig

__all__ = [
    "Candidate",
    "Critic",
    "CriticConfig",
    "Decision",
    "Discriminator",
    "DiscriminatorConfig",
    "DiscriminatorRole",
    "Evaluation",
    "FirstError",
    "FirstErrorConfig",
    "FirstErrorLocator",
    "Judge",
    "JudgeRole",
    "Proposal",
    "Reflector",
    "ReflectorRole",
    "Solver",
    "SolverConfig",
    "SolverRole",
    "ValueRole",
]
