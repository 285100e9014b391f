"""Campaigns from Python: run, open and export (:mod:`glassfrac.api`)."""

from pathlib import Path

from glassfrac.campaign.config import CampaignConfig, load_config, parse_config
from glassfrac.campaign.export import export_dataset as _export_dataset
from glassfrac.campaign.runner import run_campaign as _run_campaign
from glassfrac.campaign.store import CampaignStore

# -- campaigns ----------------------------------------------------------------------------------------

def _campaign_config(config) -> CampaignConfig:
    if isinstance(config, CampaignConfig):
        return config
    if isinstance(config, str) and "\n" in config:
        return parse_config(config)
    return load_config(config)


def run_campaign(config, workers: int | None = 0, **options) -> dict:
    """Run a campaign: many samples through generate → relax → tests (tension, shear, probe), each stored
    once in ``DIR/campaign.db`` (an ASE database) and ``DIR/samples/``; a second call resumes (README,
    :mod:`glassfrac.campaign`).

    Parameters
    ----------
    config : str, Path or CampaignConfig
        A TOML file, TOML text (a string with a line break), or a parsed config; its keys, with units, are
        listed in :mod:`glassfrac.campaign.config`. ``[output] directory`` names the campaign folder.
    workers : int or None
        0: serially in this process; N: a local Dask cluster of N workers; None: the config's
        ``[runner] workers``, else as many as the cores allow.
    **options
        Further options of :func:`glassfrac.campaign.runner.run_campaign`: ``scheduler`` (a Dask address),
        ``slurm_jobs`` (dask-jobqueue on SLURM), ``retry_failed``, ``store_wait`` (s), ``overwrite``, ``start``
        and ``stop`` (run only the samples of index start <= i < stop).

    Returns
    -------
    dict
        ``directory``, ``done``, ``failed``, ``pending``, ``ran``, ``run_seconds`` (s), ``samples_per_hour``...
        The stored labels carry units: energies in eV, sheet stresses in N/m, locations in Å.

    Examples
    --------
    >>> import glassfrac as gf
    >>> config = '''
    ... [campaign]
    ... name = "tiny"
    ... seed = 1
    ... [[samples]]
    ... kind = "monolayer"
    ... rings = [4, 4]
    ... mu2 = [0.3]
    ... count = 2
    ... [relax]
    ... fmax = 1e-4
    ... [tests]
    ... run = ["tension"]
    ... [tests.tension]
    ... max_strain = 0.02
    ... step = 0.01
    ... precision = 0.005
    ... '''
    >>> summary = gf.run_campaign(config, workers=0, show_progress=False)
    >>> summary["done"], summary["failed"], summary["directory"]
    (2, 0, 'tiny')
    """
    config = _campaign_config(config)
    summary = _run_campaign(config, workers=workers, **options)
    return {"directory": str(config.directory), **summary}


def open_campaign(directory) -> CampaignStore:
    """The store of a campaign folder: its database rows (``rows()``: ASE rows of the relaxed structures whose
    keys are the inputs and scalar labels, such as ``mu2``, ``relax_energy`` in eV, ``tension_modulus`` and
    ``tension_peak_stress`` in N/m; curves and per-atom labels in ``row.data``), ``count()``, ``failures()``
    and ``sample_dir(sample_id)``.

    Parameters
    ----------
    directory : str or Path
        A folder written by :func:`run_campaign` or ``glassfrac campaign run``.

    Returns
    -------
    CampaignStore
        The store, read from the folder's SQLite database (or the PostgreSQL one it names).

    Examples
    --------
    >>> import glassfrac as gf
    >>> store = gf.open_campaign("tiny")                 # made by the example of run_campaign
    >>> row = store.rows()[0]
    >>> store.count(), row.kind, bool(row.tension_modulus > 0)   # modulus in N/m
    (2, 'monolayer', True)
    """
    return CampaignStore.open(directory)


def export_dataset(campaign, output, overwrite: bool = False) -> dict:
    """Export a campaign's samples for the learning stages: one ``.npz`` (concatenated atoms with offsets,
    per-sample scalars, per-atom labels, event and curve tables; positions in Å, stresses in N/m) or a
    folder with one ``.npz`` per sample (:mod:`glassfrac.campaign.export`).

    Parameters
    ----------
    campaign : str, Path or CampaignStore
        The campaign folder or its store.
    output : str or Path
        ``.npz`` file, or a folder.
    overwrite : bool
        Replace an output that exists.

    Returns
    -------
    dict
        ``output``, ``samples`` and ``atoms`` (counts) and the files written.

    Examples
    --------
    >>> import glassfrac as gf
    >>> info = gf.export_dataset("tiny", "tiny.npz")      # the campaign of run_campaign's example
    >>> info["samples"], sorted(gf.open_campaign("tiny").done_ids())
    (2, ['s000000', 's000001'])
    """
    store = campaign if isinstance(campaign, CampaignStore) else CampaignStore.open(Path(campaign))
    return _export_dataset(store, output, overwrite)
