"""Peak-load campaigns: ``promoharness load`` and ``bench load`` (Locust as a subprocess).

Nothing here imports Locust (it monkey-patches the process with gevent): the locustfiles
live in ``loadtests/`` and run in their own processes; this package writes their config,
starts them, and turns their CSV/JSON output into the run report.
"""
