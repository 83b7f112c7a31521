from . import auto, bert  # noqa: F401
