"""The artifact files: the content-addressed store and the HTTP responses that serve them.

artifacts.py  artifacts/<sha[:2]>/<sha>: atomic uploads, locks, removal
downloads.py  file responses with ETag, Range and the cache policy
"""
