"""In-memory answers to the agents' per-tick GETs.

pointers.py  the (bin, arch) → latest release cache, and resolving one bin for one node
batch.py     GET /bins: every bin's latest for an arch, with its ETag
fastpath.py  ASGI middleware answering those GETs from the cache before FastAPI
"""
