from .offline import DEFAULT_MODEL, default_model_path, default_mpnet_path, load_rotten_tomatoes

__all__ = ["DEFAULT_MODEL", "default_model_path", "default_mpnet_path", "load_rotten_tomatoes"]
