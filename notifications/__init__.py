"""Notifications: webhooks (signed JSON, retried with backoff by the job workers) and e-mail, for the
events users and administrators subscribe to. Workers and the inventory record events here
(notifications.emit.notify); the job workers' supervisor sends them (notifications.send)."""
