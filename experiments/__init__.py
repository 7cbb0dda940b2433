"""Study configs: one file per study, each with ``get_config(variant)``."""
