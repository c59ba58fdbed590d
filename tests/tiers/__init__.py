"""The conformance suite every tier runs (``suite.TierSuite``), and one short file per tier."""
