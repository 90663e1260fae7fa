"""Remote storage over fsspec with the same object layout as the local store."""
