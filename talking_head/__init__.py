"""Talking-head studio: animate a face photo with the motion of a driving clip or a webcam.

The public API is small:

    from talking_head import list_models, load_model
    from talking_head.engine import Engine, animate_file
    model = load_model("landmark")
    engine = Engine(model)

(``talking_head.engine`` imports MediaPipe, so it is not imported here: listing models stays light.)
"""
from talking_head.errors import TalkingHeadError
from talking_head.registry import get_card, list_models, load_model

__all__ = ["TalkingHeadError", "get_card", "list_models", "load_model"]
__version__ = "0.1.0"
