"""The verdicts a comparison ends with (shared by every stage and by the sandbox protocol)."""

EQUAL, NOT_EQUAL, GOLD_UNPARSEABLE, TIMEOUT = "equal", "not_equal", "gold_unparseable", "timeout"
