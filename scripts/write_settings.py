"""Write one dataset's resolved config section as JSON (called by the `settings` rule).

Snakemake reruns the rule when the section's values change (its params), so the JSON
file's timestamp tells downstream stages when their settings changed.
"""

import json
from pathlib import Path

from dinr.io.atomic import write_text

snakemake = globals()["snakemake"]
write_text(Path(snakemake.output[0]), json.dumps(snakemake.params.settings, indent=2, sort_keys=True) + "\n")
