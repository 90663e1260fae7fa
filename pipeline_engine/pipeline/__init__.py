"""Pure pipeline model: pipeline.yaml spec, interpolation, DAG, lock file and the rerun plan."""
