"""semcom blocks: pure numpy PHY (``phy``) and GNU Radio blocks (``gr``)."""
