"""Notifiers: one small class per destination, each implementing `receiver.notify.result.Notifier`."""
