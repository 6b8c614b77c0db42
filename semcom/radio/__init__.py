"""Radios: device limits (``limits``), PlutoSDR burst mode through pyadi-iio (``pluto_burst``),
test doubles at the library boundary (``fakes``) and device discovery (``probe``).

Nothing here imports a device library at import time: ``adi``, ``iio`` and ``gnuradio.uhd`` are
imported where a device is opened, so configs validate and tests run without them.
"""


class RadioError(RuntimeError):
    """A device problem for the user (cannot open, lost, refused a setting); the message says
    which device, which address and what to check. The CLI prints it without a traceback."""
