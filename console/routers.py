class ChannelsDatabaseRouter:
    """The SQLite channel layer's tables live in their own database file, and nothing else does."""

    db = "channels"
    app = "channels_lite"

    def db_for_read(self, model, **hints):
        return self.db if model._meta.app_label == self.app else None

    db_for_write = db_for_read

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == self.db or app_label == self.app:
            return db == self.db and app_label == self.app
        return None
