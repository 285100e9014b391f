"""campaign stage: many samples through generate → relax → tests, stored, resumable, parallel.

    config = load_config("configs/quickstart.toml")   # validated TOML (config.py)
    run_campaign(config, workers=2)                    # LocalCluster; 0 = serial; scheduler="tcp://..."
    store = CampaignStore.open("quickstart")           # ASE database + samples/ folders (store.py)
    export_dataset(store, "quickstart.npz")            # arrays for the learning stages (export.py)

Modules: ``config`` (the TOML file), ``samples`` (sample ids and seeds), ``pipeline`` (the
stages of one sample, on a worker), ``store`` (database, folders, invariants), ``runner``
(serial or Dask, resume), ``export`` (dataset format), ``provenance``, ``demo``, ``commands``
(CLI). Scripts that call :func:`run_campaign` with a local cluster need the
``if __name__ == "__main__":`` guard.
"""

from glassfrac.campaign.config import CampaignConfig, load_config, parse_config
from glassfrac.campaign.export import export_dataset
from glassfrac.campaign.runner import campaign_status, run_campaign
from glassfrac.campaign.store import CampaignStore, row_structure

__all__ = ["CampaignConfig", "load_config", "parse_config", "run_campaign", "campaign_status", "CampaignStore",
           "row_structure", "export_dataset"]
