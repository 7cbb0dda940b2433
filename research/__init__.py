"""conv-vs-dense: controlled ablations of what convolutions buy over dense layers.

Data flows one way (see ../shared/DESIGN.md):
``experiments/*.py`` configs -> ``research.train`` (using ``research.data`` and
``research.models``) -> a workdir of JSON files and checkpoints -> ``analysis``.
"""

__version__ = "0.1.0"
