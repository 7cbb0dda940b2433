"""conv-vs-dense: controlled ablations of what convolutions buy over dense layers.

Data flows one way (see ../shared/DESIGN.md):
``experiments/*.py`` configs -> ``research.train`` (using ``research.data`` and
``research.models``) -> a workdir of JSON files and checkpoints -> ``analysis``.

Importing the package sets its XLA CPU flags before JAX starts
(``research.xla_flags``: convs on Eigen instead of YNNPACK, measured faster).
"""

from research import xla_flags

xla_flags.configure()

__version__ = "0.1.0"
