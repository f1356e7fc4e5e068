"""Endpoint simulators: pure, seeded behaviour models shared by the SimPy and asyncio clocks."""
