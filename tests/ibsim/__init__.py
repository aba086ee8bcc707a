"""Tests of `ibsim`."""
