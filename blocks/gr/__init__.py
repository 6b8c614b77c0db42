"""GNU Radio 3.10 blocks of semcom: thin wrappers around semcom.blocks.phy and semcom.models."""
