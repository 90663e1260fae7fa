"""Local content-addressed storage: objects, directory manifests, links, pointers, the hash memo."""
