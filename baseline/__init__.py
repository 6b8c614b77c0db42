"""Classical separate source-channel coding baseline: Pillow image codecs + gr-fec LDPC + QAM.

Modules: ``source_codec`` (JPEG / JPEG 2000 / WebP under a byte budget, robust decoding),
``ldpc`` (gr-fec LDPC with CRC-16 per block; imports gnuradio lazily), ``chain`` (schemes,
budget, transmit/receive, AWGN fast path and OFDM PHY path, capacity bound).
"""
