"""reid: everything that looks at pixels.

Decoding, detection, tracking, embedding, the ReID models, the synthetic world and the shared
definitions (evaluation protocol, contacts, geometry). Every other package depends on this one;
it depends on none of them. Keep this ``__init__`` free of heavy imports: serving imports ``reid``
and must never pull in torch.
"""

from reid.errors import ReidTraceError

__all__ = ["ReidTraceError"]
