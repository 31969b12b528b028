"""collectguard — compliance-first debt collection (网贷合规催收平台)."""

__version__ = "0.1.0"
