"""Telling humans: recovery events fanned out to Slack, PagerDuty and webhooks.

Data flow (Alertmanager's notify pipeline, in Python)::

    RecoveryContext.publish(kind, record)
      -> NotifyPublisher: route (event, segment) -> build one Message -> one RQ job per notifier
      -> delivery job: order (PagerDuty) -> rate slot -> Notifier.notify(message) -> NotifyResult
      -> retry later (backoff, Retry-After) | delivered | given up; result kept beside the record

A notifier is one small class (receiver/adapters/notifiers) whose result says whether a retry
can help. Nothing here can fail or block a recovery: publishing only queues jobs.
"""
