"""Every change to what nodes are told, each committed together with its cache invalidation.

releases.py  publish, pin, pause, resume, delete a release
"""
