"""Locustfiles, load shapes and campaigns.

Never imported by harness/: Locust monkey-patches the process with gevent.
"""
