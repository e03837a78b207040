"""trellis: agents that search.

The shared core: the tree data model (`trellis.tree`), the durable store (`trellis.store`), model
backends (`trellis.models`), action parsing and tool specs. The roles live in `trellis.agents`, the
search in `trellis.search`, sandboxes and task worlds in `trellis.envs`.
"""

from trellis.errors import FormatError, ModelError, TrellisError, TrellisRunError, UserError
from trellis.tree import Action, JudgeVerdict, Message, Node, Observation, Step, Trajectory, Tree, Usage

__version__ = "0.1.0"

__all__ = [
    "Action",
    "FormatError",
    "JudgeVerdict",
    "Message",
    "ModelError",
    "Node",
    "Observation",
    "Step",
    "Trajectory",
    "Tree",
    "TrellisError",
    "TrellisRunError",
    "Usage",
    "UserError",
    "__version__",
]
