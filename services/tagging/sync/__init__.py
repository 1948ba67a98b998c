"""Tag sync (标签同步): changes queued with each assignment, pushed to third-party platforms
through a `Connector` by the sync worker, and recorded in the sync log."""
