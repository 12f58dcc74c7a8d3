"""File formats: raw Data Exchange scans, canonical sinograms, 4D volumes, atomic writes."""
