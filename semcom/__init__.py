"""semcom: generative semantic communication of images over OFDM radios.

Layers (imports only go downwards):
  semcom.blocks.phy   pure numpy PHY (frame, tx, rx, channel simulator, SigMF I/O)
  semcom.models       torch-only semantic codec (encoder, decoders, training, evaluation)
  semcom.blocks.gr    thin GNU Radio blocks around the two above
  semcom.cli          the `semcom` command
"""

__version__ = "0.1.0"
