"""promoharness: channel simulation and load testing for omnichannel retail promotions."""

__version__ = "0.1.0"
