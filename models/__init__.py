"""Torch-only semantic codec: encoder, decoders, training and evaluation (no gnuradio import)."""
