"""edgesnn: spiking neural networks for vibration fault diagnosis of rotating machines."""

__version__ = "0.1.0"
