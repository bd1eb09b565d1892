"""Where official checkpoints come from: upstream repositories pinned to one commit each.

Every URL an architecture module registers is ``BASE/<path>`` with one of these bases, so a
checkpoint's address cannot drift with an upstream branch; ``SRBENCH_WEIGHTS_MIRROR`` replaces
the whole URL with ``MIRROR/<file_name>`` (see :mod:`srbench.models.weights`).
"""

NTIRE2024 = "https://github.com/Amazingren/NTIRE2024_ESR/raw/6404fa48dde4a4adbf241a51debdc661aef20449"
NTIRE2025 = "https://github.com/Amazingren/NTIRE2025_ESR/raw/b69fb668c0362deb696eecbfdebfaa5c2fcdfcb4"
BYTEDANCE = "https://github.com/bytedance/RLFN/raw/bccfde91bf8b2de80789ec033a029e6f2a932330"

#: The scales every shipped architecture is registered at.
ALL_SCALES = (2, 3, 4)
