"""Tests of `ibkr`."""
