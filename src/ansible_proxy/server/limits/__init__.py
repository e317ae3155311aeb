"""What a client may cost the server before and while a request is read (docs/security.md).

connections.py  the uvicorn protocol: URL and header caps, slow and idle connections
bodies.py       request bodies limited per route before they are read
throttle.py     per-address buckets for enrolments and failed authentication
"""
