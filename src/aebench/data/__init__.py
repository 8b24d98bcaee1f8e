"""Datasets from name to validated Parquet splits.

- `registry`: every dataset by name (generated: EMBEDDED; fetched: REAL) and the checks of
  their `data.options`;
- `datasets/`: one module per dataset or family, `fetch`: mirrors, checksums, downloads and
  the seeded subsample shared by the real ones;
- `raw`: the raw array format between download and preprocess; `parquet`: the processed
  splits; `expectations`: their validation; `embedding`: the diffusion-map stage's files.
"""
