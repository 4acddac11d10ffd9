"""How the command line (and every process it starts to train) logs and warns: one place, so that a training
process of :mod:`tropicrop.training.parallel` prints what the command would and no more."""

from __future__ import annotations

import logging
import warnings


def configure_logging(verbose: int) -> None:
    """Log level from ``-v`` count; GDAL's messages to the debug log; Python and Lightning warnings tamed."""
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    for root_handler in logging.getLogger().handlers:
        root_handler.setLevel(level)  # records re-levelled by a logger filter (GDAL's) are judged again here
    from tropicrop.io.gdal import send_gdal_messages_to_debug  # after parsing: --help stays quick

    send_gdal_messages_to_debug()  # GDAL's messages go to the log at -vv; the errors they cause are raised as ours
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    if not verbose:  # libraries' notices to their developers (numpy 2.5 under rasterio 1.4: one per window read)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
    warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")  # lightning's own deprecation notice
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        lightning_log = logging.getLogger(name)
        lightning_log.setLevel(logging.INFO if verbose else logging.WARNING)
        lightning_log.propagate = False  # lightning prints through its own handler; avoid printing twice
