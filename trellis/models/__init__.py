"""Model backends behind the `ChatModel` seam, selected by spec strings."""

from trellis.models.base import BaseChatModel, ChatModel, Completion, CompletionRequest, make_request, total_usage
from trellis.models.replay import ReplayModel
from trellis.models.scripted import ScriptedModel
from trellis.models.spec import BACKENDS, load_model

__all__ = [
    "BACKENDS",
    "BaseChatModel",
    "ChatModel",
    "Completion",
    "CompletionRequest",
    "ReplayModel",
    "ScriptedModel",
    "load_model",
    "make_request",
    "total_usage",
]
