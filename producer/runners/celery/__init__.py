"""Everything Celery on the producer side, together: the models (``models``), publishing a batch
and waiting for its records (``publish``), starting and stopping worker processes (``workers``)
and finding the nodes that consume a queue (``consumers``). The Celery app and its task live in
``worker/``. Importing this package imports none of them."""
