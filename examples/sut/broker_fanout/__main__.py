"""``python -m examples.sut.broker_fanout``: the front, which starts everything else."""

from examples.sut.broker_fanout.front import main

main()
