"""Example jobs for ``jobbench bench --job`` (see docs/your-job.md). Imported from the working
directory: run jobbench from the repository's top level."""
