"""Write tests/cluster/data/velero-crds.yaml: Velero's own Backup and Restore CRDs, from the built velero.

python tools/velero/test_crds.py   # after tools/velero/build.sh

The CRDs come from `velero install --crds-only --dry-run -o yaml` (Velero's config/crd/v1 package,
generated from its Go types), which build.sh saves next to the binary. Only Backup and Restore are
checked in: test_backup.py installs this file, and other tests expect `berth up` to skip a Schedule
whose CRD is absent. tests/cluster/test_velero_server.py installs all of Velero's CRDs from the
build and checks that this file still equals them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[1] / "tests" / "cluster" / "data" / "velero-crds.yaml"
KEEP = ("backups.velero.io", "restores.velero.io")


def main() -> None:
    bin_dir = Path(subprocess.check_output([str(HERE / "build.sh"), "--print-bin-dir"], text=True).strip())
    version = bin_dir.parent.name.split("_", 1)[0].removeprefix("velero-")
    crds = {c["metadata"]["name"]: c for c in yaml.safe_load((bin_dir / "crds.yaml").read_text())["items"]}
    header = (
        f"# Velero's Backup and Restore CustomResourceDefinitions (velero.io/v1), Velero {version}, as\n"
        "# `velero install --crds-only --dry-run -o yaml` writes them (generated from its Go types,\n"
        "# github.com/vmware-tanzu/velero config/crd/v1). Copyright the Velero contributors, licensed\n"
        "# under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).\n"
        "# Written by tools/velero/test_crds.py; tests/cluster/test_velero_server.py checks it against\n"
        "# the build. Schedule is left out on purpose: other tests expect `berth up` to skip a Schedule\n"
        "# whose CRD is absent.\n"
    )
    body = {"apiVersion": "v1", "kind": "List", "items": [crds[name] for name in KEEP]}
    OUT.write_text(header + yaml.safe_dump(body, sort_keys=False, width=100))
    print(OUT)


if __name__ == "__main__":
    main()
