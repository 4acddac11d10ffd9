"""tropicrop: month-by-month crop maps from Sentinel-1 image time series in tropical regions.

The flow: a scene on disk (``scene.yaml`` + GeoTIFFs) is loaded as a :class:`~tropicrop.scene.Scene`, cut
into 12-month windows ending at each target month, classified by a UnetConvLSTM-family network, and written
back as georeferenced monthly maps with per-date accuracy figures.
"""

__version__ = "0.1.0"
