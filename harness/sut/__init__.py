"""Measuring the user's own integration stack (a "system under test", SUT).

The estate serves on 127.0.0.1; a *driver* tells the system to create, submit, approve,
schedule, publish, pause, resume and roll back promotions (``driver.SystemUnderTest``, a
small protocol; ``yaml_driver`` for the declarative form); ``play`` walks a scenario's
timeline through it on the estate's clock; ``run`` puts it together and computes every
figure from the estate's ground truth alone (``truth``). Nothing here imports the
reference orchestrator: a system under test may be anything that speaks HTTP.
"""
