"""A campaign stored in a real PostgreSQL server reads back the same rows as the SQLite default.

The test starts its own server (``initdb`` + ``pg_ctl``, loopback only, in a temporary
folder; as the ``postgres`` user when run by root, which PostgreSQL refuses) and skips with
the reason when the server binaries or psycopg2 are missing (Debian: ``apt-get install
postgresql``; Python: ``pip install 'glassfrac[postgres]'``).
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from campaign_helpers import same

from glassfrac.campaign.config import load_config
from glassfrac.campaign.export import export_dataset
from glassfrac.campaign.runner import campaign_status, run_campaign
from glassfrac.campaign.store import CampaignStore, row_structure


def _binary(name):
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2 missing: pip install 'glassfrac[postgres]'")
    pytest.importorskip("ase_db_backends", reason="ase-db-backends missing: pip install 'glassfrac[postgres]'")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    prefix = []
    root = Path(tempfile.mkdtemp(prefix="glassfrac-pg-"))
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run the server as")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run(prefix + [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                             "--no-sync"], check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    subprocess.run(prefix + [pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE campaigns")
        con.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/campaigns"
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_store_reads_back_what_sqlite_does(postgres_url, write_config, tmp_path):
    stores = {}
    for name, database in (("sqlite", None), ("postgres", postgres_url)):
        extra = f'database = "{database}"' if database else ""
        path = write_config(directory=tmp_path / name, count=1, extra=extra)
        out = run_campaign(load_config(path), workers=0, show_progress=False)
        assert (out["done"], out["failed"]) == (2, 0)
        stores[name] = CampaignStore.open(tmp_path / name, database)
    assert stores["postgres"].url.startswith("postgresql://")
    assert not (tmp_path / "postgres/campaign.db").exists()
    assert campaign_status(store=stores["postgres"])["done"] == 2
    assert stores["postgres"].verify()["problems"] == []
    lite, pg = stores["sqlite"].rows(), stores["postgres"].rows()
    assert [r.sample_id for r in pg] == [r.sample_id for r in lite] == ["s000000", "s000001"]
    for a, b in zip(lite, pg, strict=True):
        assert {k: v for k, v in a.key_value_pairs.items() if k != "seconds"} == \
               {k: v for k, v in b.key_value_pairs.items() if k != "seconds"}
        sa, sb = row_structure(a), row_structure(b)
        assert np.array_equal(sa.positions, sb.positions) and sa.box == sb.box
        assert list(sa.species) == list(sb.species)
        for name, values in a.data["arrays"].items():
            assert np.array_equal(values, b.data["arrays"][name]) and np.asarray(b.data["arrays"][name]).dtype == \
                   np.asarray(values).dtype
        for key in ("rings", "energy", "energy_file", "units", "figures"):
            assert same(a.data[key], b.data[key]), key
        untimed = [{k: v for k, v in r.data["relax"].items() if k != "seconds"} for r in (a, b)]
        assert same(*untimed)
        assert a.data["provenance"]["seeds"] == b.data["provenance"]["seeds"]
        assert same([f for f in a.data["files"] if f["path"].endswith(".npy")],
                    [f for f in b.data["files"] if f["path"].endswith(".npy")])
    a = np.load(export_dataset(stores["sqlite"], tmp_path / "lite.npz")["output"])
    b = np.load(export_dataset(stores["postgres"], tmp_path / "pg.npz")["output"])
    for key in ("positions", "species", "cell", "potential_energy", "mu2_target", "atom_start"):
        assert np.array_equal(a[key], b[key])
