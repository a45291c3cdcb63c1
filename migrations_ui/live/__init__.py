"""The pages that update themselves: the Jobs pages, the batch page, their charts and websocket consumers."""
