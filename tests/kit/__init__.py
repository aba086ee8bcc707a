"""The one kit of test helpers: every test module imports its shared fixtures' building blocks,
sample data and bounded waits from here, never from another test module."""
